// Package ingest puts OBS streams into Parley rooms.
//
//   - KeyStore: stream keys in SQLite (ingress.db in the data directory,
//     WAL, only SHA-256 hashes stored); satisfies rtmp.KeyStore and serves
//     the admin API (KeysHandler). The `parley ingress` CLI opens the same
//     file while the server runs.
//   - Service: the rtmp.Sink for the RTMP server and the WHIP endpoint
//     (WHIPHandler). Each stream is a participant that publishes local
//     tracks through the SFU (sfu.PublishLocal) and is announced to the
//     room through a Directory that signaling implements.
//
// Rules: one live stream per (room, identity), RTMP and WHIP together; a
// stream that ends keeps its participant for reconnect_grace so OBS's
// automatic reconnect comes back as the same participant. RTMP cannot
// carry key-frame requests (they are counted); WHIP forwards them to the
// encoder as RTCP PLI.
package ingest
