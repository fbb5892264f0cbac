package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/recording"
)

// TestRecordingCommand: `parley recording list|start|stop` call the admin
// API with the configured API key and print what it answers.
func TestRecordingCommand(t *testing.T) {
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != testKeyID || secret != testSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		calls = append(calls, r.Method+" "+r.URL.Path)
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		m := recording.Manifest{ID: "RC_1", Room: "standup", State: recording.StateComplete, Started: time.Unix(1e9, 0).UTC()}
		switch {
		case r.URL.Path == "/api/admin/rooms/standup/recording/stop" && r.Method == http.MethodPost:
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "conflict", "message": "recording: the room is not being recorded"})
		case strings.HasSuffix(r.URL.Path, "/recordings"):
			_ = json.NewEncoder(w).Encode(map[string]any{"recordings": []recording.Manifest{m}})
		default:
			_ = json.NewEncoder(w).Encode(m)
		}
	}))
	defer srv.Close()
	env := []string{"PARLEY_SIGNALING_API_KEYS=" + testKeyID + "=" + testSecret}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := recordingCommand(context.Background(), append(args, "--server", srv.URL), env, &out)
		return out.String(), err
	}
	out, err := run("list")
	if err != nil || !strings.Contains(out, "RC_1") || !strings.Contains(out, "complete") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err = run("start", "--room", "standup"); err != nil || !strings.Contains(out, "RC_1") {
		t.Fatalf("start: %v %s", err, out)
	}
	if _, err = run("stop", "--room", "standup"); err == nil || !strings.Contains(err.Error(), "not being recorded") {
		t.Fatalf("stop without a recording: %v", err)
	}
	if _, err = run("start"); err == nil {
		t.Fatal("start without --room")
	}
	want := []string{"GET /api/admin/recordings", "POST /api/admin/rooms/standup/recording/start", "POST /api/admin/rooms/standup/recording/stop"}
	if strings.Join(calls, ",") != strings.Join(want, ",") {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}
