// Package simulcast holds the pure parts of per-subscriber layer choice:
// the Switcher, which turns the layers of one published video track into
// the single continuous stream a subscriber receives, and the Selector,
// which decides which layer each of a subscriber's tracks should get
// from its estimated bandwidth and how the client shows the tracks.
//
// Why it exists: a browser publishing simulcast sends up to three
// independent encodings (rids q, h, f), each with its own SSRC, sequence
// numbers, timestamps and VP8 PictureIDs. A subscriber's decoder knows
// nothing of this; it must see one stream that never jumps back, has no
// hole it would NACK forever, and changes resolution only at a key
// frame. Keeping these rules out of the SFU's forwarding code, with no
// pion types and no goroutines, lets them be tested exhaustively on a
// fake clock (testing/synctest) and keeps the per-packet cost at a
// mutex and a few additions, with no allocation.
//
// How the SFU plugs them in: each received packet is parsed once per
// track (sequence number, timestamp, marker, key frame flag, VP8
// descriptor) into a Packet and offered to every subscriber's Switcher;
// a forwarded packet is queued with its Result (layer, incoming sequence
// number, Mapping) and the writer applies the Mapping to its own copy.
// NACKs go through Switcher.Lookup to the right layer's cache. The
// Selector runs per subscriber when its bandwidth estimate, tile reports
// or the tracks' bitrates change, and its choices go to
// Switcher.SetTarget.
package simulcast
