// Package testkit holds the small helpers that several packages' tests
// share: loopback ports, a self-signed certificate, polling, running a
// component until the test ends, child processes, and reading metrics.
//
// Only tests import it. It imports no other Parley package, so any
// package's tests can use it without bending the dependency rules.
package testkit
