// Package firefox holds Parley's Firefox end-to-end tests and the small
// driver they need: a headless firefox-esr process with a fresh profile
// (fake camera and microphone, loopback WebRTC, no outside network) that
// is steered over WebDriver BiDi, Firefox's built-in remote protocol,
// with a minimal client on gorilla/websocket (no extra module).
//
// The tests build the parley binary, run it on free loopback ports and
// put a Firefox participant in a call with a headless Chromium one
// (driven by chromedp), so the web client is checked across the two
// browser engines the issue promises.
//
// Run with `go test ./e2e/firefox` from the module root; it needs
// /usr/bin/firefox-esr (`apt-get install -y firefox-esr`) and
// /usr/bin/chromium (`apt-get install -y chromium`), and builds
// ./cmd/parley unless PARLEY_E2E_BIN names a binary to test.
//
// Firefox gets a throwaway profile whose user.js turns off telemetry,
// updates, Safe Browsing, Remote Settings, studies, captive-portal and
// connectivity probes, and points every non-loopback request at a local
// proxy that refuses it and records it (Browser.Refused), while
// MOZ_DISABLE_NONLOCAL_CONNECTIONS=1 makes Firefox itself refuse TCP to
// anything but loopback: the tests touch nothing beyond this machine.
package firefox
