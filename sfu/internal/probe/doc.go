// Package probe decides when and how hard an SFU probes a subscriber's
// downlink for spare bandwidth, and measures what a probe showed.
//
// Without probing, a send-side estimator (pion's GCC) can only learn
// about bandwidth the sender uses: after a dip it is capped near 1.5
// times what is being sent and climbs a few percent a second, so a
// subscriber held on a low layer takes tens of seconds to get back up.
// A probe cluster is a short burst (a couple of hundred milliseconds)
// of padding sent on top of the media so that the total reaches a
// target rate, typically twice the current estimate, never more than
// the subscriber's tiles want. Each padding packet carries a
// transport-wide sequence number, so the subscriber's transport-cc
// feedback tells when each one arrived: if the cluster arrived at the
// rate it was sent, with little loss, the link carries the target, and
// the Controller raises a probed floor under GCC's estimate to it, and
// the estimate it gives the layer choice to 0.85 of that.
//
// The Recorder keeps the probe packets and their feedback; the
// Controller makes the decisions from plain numbers and a clock, so its
// tests need no network.
package probe
