package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/rooms"
)

// The room directory cmd builds is what ingest tells about its streams.
var _ ingest.Directory = (*rooms.Directory)(nil)

// TestDependencyDirection enforces the package map in docs/architecture.md:
// cmd -> signaling -> {sfu, chat, rooms}; turn, rtmp, chat and web import
// no sibling; sfu knows nothing of signaling, chat or users; the leaf
// packages (signaling/proto, internal/ids, internal/wsbatch,
// internal/promreg, internal/rawudp, internal/repairedrid, internal/wire) import nothing of Parley's beyond what
// is listed; the test-support packages (sfu/sfutest, internal/testkit,
// internal/netlab) stay out of the binaries. It reads the real import graph with `go list
// -deps`, so a stray import fails the build.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/parleyhq/parley/"
	all := []string{"signaling", "sfu", "chat", "turn", "rtmp", "web", "cmd", "ingest", "rooms", "internal", "recording", "cluster"}
	rules := []struct {
		pkg    string
		forbid []string // paths relative to the module; a path forbids its subpackages too
		except []string // packages allowed although a forbid entry covers them
	}{
		{pkg: "sfu", forbid: []string{"signaling", "chat", "turn", "rtmp", "web", "cmd", "ingest", "rooms"}},
		// The SFU's test harness knows the SFU and nothing above it, so
		// the tests of every layer above can use it.
		{pkg: "sfu/sfutest", forbid: []string{"signaling", "chat", "turn", "rtmp", "web", "cmd", "ingest", "rooms"}},
		// The shipped binaries link no test support (tests' imports are
		// not in `go list -deps`).
		{pkg: "cmd", forbid: []string{"sfu/sfutest", "internal/testkit", "internal/netlab", "recording/mediatest"}},
		// The network lab is a leaf of test support: nothing of Parley's.
		{pkg: "internal/netlab", forbid: all},
		{pkg: "chat", forbid: []string{"signaling", "sfu", "turn", "rtmp", "web", "cmd", "rooms"}},
		{pkg: "turn", forbid: []string{"signaling", "sfu", "chat", "rtmp", "web", "cmd", "rooms"}},
		{pkg: "rtmp", forbid: []string{"signaling", "sfu", "chat", "turn", "web", "cmd", "rooms"}},
		{pkg: "web", forbid: []string{"signaling", "sfu", "chat", "turn", "rtmp", "cmd", "rooms"}},
		{pkg: "signaling", forbid: []string{"turn", "rtmp", "web", "cmd", "ingest"}},
		{pkg: "ingest", forbid: []string{"signaling", "chat", "turn", "web", "cmd", "rooms"}},
		// The room directory knows the wire format (and through it chat's
		// validation) and the SFU's track type, not the server that owns
		// the sockets.
		{pkg: "rooms", forbid: []string{"signaling", "chat", "turn", "rtmp", "web", "cmd", "ingest"},
			except: []string{"signaling/proto", "signaling/auth", "chat"}},
		// The wire format is shared by servers and clients: chat's
		// validation and auth's grants only.
		{pkg: "signaling/proto", forbid: all, except: []string{"signaling/auth", "chat"}},
		{pkg: "internal/ids", forbid: all},
		{pkg: "internal/wsbatch", forbid: all},
		{pkg: "internal/promreg", forbid: all},
		{pkg: "internal/rawudp", forbid: all},
		// Shared by the load tool's client and the SFU's test clients.
		{pkg: "internal/repairedrid", forbid: all},
		// Cluster coordination knows Redis, not the components it places.
		{pkg: "cluster", forbid: all},
		// Recordings know their file formats; the SFU and signaling drive them.
		{pkg: "recording", forbid: all, except: []string{"internal/ids"}},
		// The shared protocol client knows the wire format only.
		{pkg: "internal/wire", forbid: all, except: []string{"signaling/proto", "signaling/auth", "chat"}},
	}
	for _, rule := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../"+rule.pkg+"/...").CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "matched no packages") {
				continue
			}
			t.Fatalf("go list %s: %v\n%s", rule.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(dep, mod)
			if !ok || covers(rule.except, rel) || covers([]string{rule.pkg}, rel) {
				continue
			}
			if covers(rule.forbid, rel) {
				t.Errorf("%s depends on %s, which the architecture forbids", rule.pkg, rel)
			}
		}
	}
}

// covers reports whether rel is one of paths or inside one of them.
func covers(paths []string, rel string) bool {
	for _, p := range paths {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}
