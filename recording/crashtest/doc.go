// Package crashtest holds the recording's crash test (issue #15): the
// real parley binary records a call from pion publishers, is killed with
// SIGKILL mid-recording and restarted on the same data directory. It has
// no code of its own; the test is in crash_test.go.
package crashtest
