package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		c    Config
		want string
	}{
		{DefaultConfig(), ""},
		{Config{Level: "debug", Format: "json"}, ""},
		{Config{Level: "loud", Format: "text"}, "log.level"},
		{Config{Level: "info", Format: "xml"}, "log.format"},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err %v, want %q", tc.c, err, tc.want)
		}
	}
}

func TestPionAdapterLevelsAndScope(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{Level: "info", Format: "text"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	pl := PionFactory(l).NewLogger("ice")
	pl.Debugf("hidden %d", 1)
	pl.Warnf("candidate %s failed", "host")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Fatalf("debug line leaked at info level: %s", out)
	}
	if !strings.Contains(out, "candidate host failed") || !strings.Contains(out, "scope=ice") || !strings.Contains(out, "level=WARN") {
		t.Fatalf("unexpected output: %s", out)
	}
}

// Demoted pion logs land one level lower under the same "scope" key: a
// pion Error is a Warn, a pion Info is hidden at Info.
func TestPionAdapterDemote(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{Level: "info", Format: "text"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	pl := PionFactory(l, PionOptions{Demote: true}).NewLogger("turn")
	pl.Infof("per-request %s", "noise")
	pl.Errorf("handshake %s", "failed")
	pl.Warn("a warning")
	out := buf.String()
	if strings.Contains(out, "per-request") {
		t.Fatalf("demoted Info logged at info level: %s", out)
	}
	if !strings.Contains(out, `level=WARN msg="handshake failed" scope=turn`) {
		t.Fatalf("demoted Error not a WARN with scope=turn: %s", out)
	}
	if !strings.Contains(out, `level=INFO msg="a warning" scope=turn`) {
		t.Fatalf("demoted Warn not an INFO: %s", out)
	}
}
