package wsbatch

import "syscall"

// writeFD never writes on Windows: Go's sockets there are overlapped
// handles, so the direct path answers "would block" and every frame goes
// through the writer goroutine (gorilla's own writes).
func writeFD(fd uintptr, p []byte) (int, error) { return 0, syscall.EAGAIN }
