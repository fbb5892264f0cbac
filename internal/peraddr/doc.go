// Package peraddr bounds what one client address may do or hold, for every
// listener that answers unauthenticated clients (HTTP, WebSocket, WHIP, and
// later RTMP and TURN).
//
// Three pieces share one idea of "an address":
//
//   - Key maps an IP to the unit limits count in: an IPv4 address, or the
//     IPv6 prefix (a /64 by default) it belongs to. One subscriber is given
//     at least a /64, so counting single IPv6 addresses would let one host
//     take 2^64 slots.
//   - Limiter is a token bucket per key (a rate: "30 requests a minute").
//   - Cap counts what a key holds at once (a concurrency: "32 sockets that
//     have not authenticated yet").
//
// Both tables are bounded (Config.MaxEntries) and never refuse a newcomer
// just because other addresses filled them: entries that no longer matter
// are forgotten first (a Limiter's least recently used bucket once it has
// refilled; a Cap's entries whose holds all ended or stopped counting), and
// only when every entry is still in use does a newcomer share one overflow
// budget with the other newcomers (Config.Overflow*). A distributed flood
// can therefore slow newcomers down but cannot lock them out, and memory
// stays at MaxEntries entries whatever the number of attacking addresses.
//
// Resolver decides which address a request comes from: the TCP peer,
// unless the peer is a configured reverse proxy, in which case the
// forwarded client address is believed.
package peraddr
