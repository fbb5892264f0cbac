// Package webm writes WebM (Matroska) files for recordings: one file per
// video track, frames appended as they arrive, readable by ffmpeg and browsers
// at every moment.
//
// Crash safety comes from the layout: the Segment has an unknown size and
// each Cluster is written whole, with its size, when it closes (at a key
// frame, after MaxClusterDuration, or before its 16-bit relative
// timestamps would overflow). A process killed mid-recording leaves a file
// that plays up to the last closed cluster; there is no index or duration
// to patch at the end (players compute the duration by reading, as they
// do for live WebM).
package webm
