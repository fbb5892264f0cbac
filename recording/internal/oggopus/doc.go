// Package oggopus writes Opus audio to Ogg files (RFC 7845) for
// recordings, from packets stamped with their position in the stream.
//
// Time is kept honest: a packet's position (in 48 kHz samples from the
// start) decides where it lands, and a gap before it (packets lost on the
// way, a muted microphone, DTX) is filled with Opus silence frames, so
// the file's duration is the recorded time and a second track recorded
// beside it stays in step. Pages are written at most a second apart, so a
// process killed mid-recording leaves a file that plays up to its last
// page.
package oggopus
