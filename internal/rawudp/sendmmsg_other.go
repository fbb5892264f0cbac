//go:build !linux

package rawudp

// sysBatch: only Linux batches (sendmmsg); elsewhere Cork does nothing
// and no batch is ever made.
type sysBatch struct{}

func sendMmsg(int, bool, *batch, int, int) (int, error) { return 0, ErrFamily }

func gsoSupported(int) bool { return false }
