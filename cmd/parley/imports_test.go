package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection enforces the package map in docs/architecture.md:
// cmd -> signaling -> {sfu, chat}; turn, rtmp, chat and web import no
// sibling; sfu knows nothing of signaling, chat or users. It reads the real
// import graph with `go list -deps`, so a stray import fails the build.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/parleyhq/parley/"
	forbidden := map[string][]string{
		"sfu":       {"signaling", "chat", "turn", "rtmp", "web", "cmd", "ingest"},
		"chat":      {"signaling", "sfu", "turn", "rtmp", "web", "cmd"},
		"turn":      {"signaling", "sfu", "chat", "rtmp", "web", "cmd"},
		"rtmp":      {"signaling", "sfu", "chat", "turn", "web", "cmd"},
		"web":       {"signaling", "sfu", "chat", "turn", "rtmp", "cmd"},
		"signaling": {"turn", "rtmp", "web", "cmd", "ingest"},
		"ingest":    {"signaling", "chat", "turn", "web", "cmd"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../"+pkg+"/...").CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "matched no packages") {
				continue
			}
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(dep, mod)
			if !ok {
				continue
			}
			top, _, _ := strings.Cut(rel, "/")
			for _, b := range bad {
				if top == b {
					t.Errorf("%s depends on %s (%s), which the architecture forbids", pkg, b, dep)
				}
			}
		}
	}
}
