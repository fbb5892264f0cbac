// Package wsbatch is the write side of Parley's WebSockets, beneath
// gorilla/websocket: a bounded per-connection send queue, write batching
// (one write(2) per wake-up of the writer), and direct writes of a frame
// from the pushing goroutine when the connection is idle. It owns every
// assumption those shortcuts make about gorilla (see Upgrader), so the
// protocol code above it only enqueues and runs a writer loop.
//
// Write batching. gorilla/websocket writes every frame with its own
// write(2), and a chat push to a busy member is a handful of small frames:
// under load that syscall (and the deadline reset before it) was most of
// the server's CPU. Conn sits between gorilla and the socket: while
// the writer goroutine has a batch open, frames gorilla "writes" only land
// in a buffer, and the batch goes out in one write when it ends. Outside
// a batch (the reader answering a ping, the upgrade response) writes go
// straight through.
//
// Direct writes. Most pushes find their connection idle: the writer has
// nothing open and the queue is empty. Waking the writer goroutine for
// one frame costs about as much as the write itself, so TryDirect frames
// the message and offers it to the socket without waiting, on the
// pushing goroutine. What the socket does not take right away becomes
// pending, and the writer sends it, with a deadline, before anything else.

package wsbatch
