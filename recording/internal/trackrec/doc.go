// Package trackrec turns one track's RTP packets into a file on the
// recording's timeline: VP8 and VP9 into WebM, H.264 into Matroska, Opus
// into Ogg.
//
// Packets are reordered in a short window (pion's samplebuilder), frames
// are placed by RTP timestamp from the moment the track's first packet
// arrived relative to the recording's start, so every file of a recording
// shares one clock and can be laid side by side without offsets. After a
// lost video frame the recorder waits for the next key frame (and asks
// for one) rather than writing frames that would not decode; for H.264
// that is an IDR, and the file starts only at one whose SPS and PPS were
// seen (the file's avcC is made from them).
package trackrec
