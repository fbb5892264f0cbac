// Package e2e holds Parley's end-to-end tests: they build the parley
// binary, run it as a subprocess on loopback ports and drive real headless
// Chromium browsers (fake camera and microphone) against it. The non-test
// files are the small helpers the tests share (server process, browsers,
// screenshots); they are usable from throwaway tools too.
//
// Run with `go test ./e2e` (needs /usr/bin/chromium: `apt-get install -y
// chromium`). Screenshots of every call land in e2e/testdata/out.
// Chat and call-invitation tests mint tokens with the test API key
// (messaging-only tokens have room "" and the chat grant); TURN tests
// enable the embedded TURN server on free loopback ports and force relay
// in the browsers with ?relay=. PARLEY_E2E_RACE=1 builds the server with -race; a race report in its
// log makes the server exit non-zero or shows up in the log tail of a
// failed test.
package e2e
