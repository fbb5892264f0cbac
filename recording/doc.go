// Package recording records meetings to disk: a directory per recording
// (data_dir/recordings/<room>/<id>/) with one file per published track,
// written as the packets arrive (VP8 and VP9 to WebM, H.264 to Matroska,
// Opus to Ogg, on one shared timeline), and a JSON manifest that lines
// them up. Other codecs (AV1) are not recorded: AddTrack says ErrCodec.
//
// A recording survives the process: files are written in whole clusters
// and pages and fsynced on a schedule, and the manifest is rewritten
// atomically; a recording found "recording" when the store opens was cut
// short by a crash and is marked incomplete, its files playable up to the
// last seconds before the kill (recording/crashtest kills the real binary
// with SIGKILL to show it).
//
// The package knows nothing of the SFU or signaling: a Recording hands out
// a TrackWriter per track, which takes RTP packets like a subscriber's
// connection would (webrtc.TrackLocalWriter) and says when it needs a key
// frame.
package recording
