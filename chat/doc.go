// Package chat is Parley's messaging domain: conversations (one per call
// room, one per pair of people, and explicit groups), an append-only event
// log per conversation with a contiguous sequence number, client message ids
// that make retries idempotent, delivery and read watermarks, and the Store
// interface that persists all of it. It has no transport code: the signaling
// package turns WebSocket frames into calls on Service and pushes the
// resulting events to connected clients.
//
// The delivery contract, which every transport must preserve:
//
//   - A message exists only once it is stored. Service.Send returns an Ack
//     only after the store's transaction has committed, so an Ack the client
//     sees is never lost by a server crash.
//   - Every client-originated event carries a client message id (a UUID the
//     client generates once per message). Sending the same (sender, client
//     id) again in the same conversation returns the original Ack with
//     Duplicate set instead of storing a second message, so clients retry
//     freely after a timeout or reconnect.
//   - Seq numbers in a conversation start at 1 and have no gaps. A client
//     that receives seq 7 after seq 5 knows it missed 6 and asks for it
//     (Service.Range), and after a reconnect it sends its last seen seq per
//     conversation (Service.CatchUp).
//   - Edits and deletes are new events with their own seq that point at an
//     earlier seq; Fold turns an event list into what the user sees, so all
//     clients that hold the same events show the same thing.
//
// Wiring (in cmd/parley):
//
//	st, err := sqlitestore.Open(ctx, cfg.Chat.DatabasePath(), sqlitestore.OptionsFromConfig(cfg.Chat))
//	// or, with chat.store: postgres (several nodes on one database):
//	st, err := pgstore.Open(ctx, cfg.Chat.PostgresURL, pgstore.OptionsFromConfig(cfg.Chat))
//	defer st.Close()
//	svc, err := chat.New(cfg.Chat, chat.Deps{Store: st, Logger: log, Registerer: reg})
//
// Service has no goroutines; the store's group-commit writer stops in Close.
package chat
