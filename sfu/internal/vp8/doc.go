// Package vp8 reads and rewrites the VP8 RTP payload descriptor (RFC 7741,
// section 4.2).
//
// Why it exists: a simulcast publisher sends each layer as an independent
// VP8 stream with its own PictureID and TL0PICIDX sequence. A subscriber
// sees one stream, and its decoder uses PictureID to notice lost frames and
// TL0PICIDX to track base-layer frames, so when the SFU switches layers it
// must renumber both to continue where the previous layer left off. The
// parse runs once per received packet and the rewrite once per forwarded
// packet on the writer's own copy, so neither allocates.
//
// Field widths: a PictureID is 7 or 15 bits (the M bit). The width cannot
// change in place without moving the payload, so Rewrite keeps the width
// the source used: a 15-bit source gets the value modulo 2^15, a 7-bit
// source gets only the low 7 bits. Counting continues modulo 2^15 in the
// caller; a receiver of a 7-bit stream therefore sees ids that are
// continuous modulo 128, which is all RFC 7741 promises for that width.
// Browsers send 15-bit ids.
package vp8
