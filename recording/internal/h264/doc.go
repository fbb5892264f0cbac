// Package h264 reads what a recording needs from an H.264 stream (ITU-T
// H.264): the NAL units of a frame in AVC form (each prefixed by its
// 4-byte length, as pion's depacketizer hands them out with IsAVC), the
// picture size and profile from a sequence parameter set, and the
// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 "avcC") that Matroska
// stores as the track's CodecPrivate.
//
// Its input comes from publishers, so every read is bounds-checked and
// every count is limited; FuzzParseSPS and FuzzNALs exercise it.
package h264
