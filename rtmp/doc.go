// Package rtmp accepts RTMP publishes (OBS "Custom" service: server
// rtmp://host/live, stream key = a Parley ingress key), checks the stream
// key, remuxes FLV/AVC video into RTP H.264 without transcoding, transcodes
// AAC audio to Opus through a Transcoder (ffmpeg by default), and hands both
// tracks to a Sink that the SFU satisfies. It imports no sibling package:
// the interfaces it needs (Sink, Session, TrackWriter, KeyStore,
// Transcoder) are declared here and wired in cmd.
//
// Publish rules, as a publisher sees them:
//
//   - The RTMP app must be the configured app name ("live" by default).
//   - The publishing name is the stream key; anything after '?' is ignored.
//     An unknown or revoked key is refused before "publish started", with an
//     onStatus error "parley: unknown stream key" or "parley: stream key
//     revoked" (ffmpeg prints it as "Server error: ...").
//   - One live publish per stream key. A second publish while the key is
//     live is refused with "parley: stream key already live"; the first
//     publish keeps going. Reconnecting after the first connection closed or
//     timed out works at once.
//   - Video must be H.264 (baseline, main or high; 8-bit 4:2:0) without
//     B-frames. A stream whose frames arrive out of presentation order
//     (B-frames) is stopped with a message telling the user to set B-frames
//     to 0 (OBS: Settings > Output > Output Mode Advanced > x264 profile
//     "baseline" or x264 options "bframes=0"). Enhanced-RTMP HEVC/AV1/VP9
//     is refused with a message telling the user to pick H.264.
//   - Audio may be AAC (any of the usual rates, mono or stereo); it is sent
//     on as 48 kHz Opus. If the transcoder is missing or keeps dying, video
//     keeps publishing and the Session is told audio is unavailable.
package rtmp
