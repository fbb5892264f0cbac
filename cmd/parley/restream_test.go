package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRestreamCommand: `parley restream start|status|stop` call the admin
// API with the configured API key, the URL from --url or
// RESTREAM_URL in the body, and never print it.
func TestRestreamCommand(t *testing.T) {
	const key = "sk-secret-42"
	var calls, urls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != testKeyID || secret != testSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		calls = append(calls, r.Method+" "+r.URL.Path)
		switch r.Method {
		case http.MethodPost:
			var b struct {
				URL string `json:"url"`
			}
			if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&b) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			urls = append(urls, b.URL)
			_, _ = w.Write([]byte(`{"active":true,"since":1000000000000,"by":{"identity":"admin:k"}}`))
		case http.MethodGet:
			_, _ = w.Write([]byte(`{"active":true,"since":1000000000000,"by":{"identity":"admin:k"}}`))
		case http.MethodDelete:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"not_found","message":"restream: this room is not streamed live"}`))
		}
	}))
	defer srv.Close()
	env := []string{"PARLEY_SIGNALING_API_KEYS=" + testKeyID + "=" + testSecret}
	run := func(env []string, args ...string) (string, error) {
		var out bytes.Buffer
		err := restreamCommand(context.Background(), append(args, "--server", srv.URL), env, &out)
		return out.String(), err
	}
	out, err := run(env, "start", "--room", "standup", "--url", "rtmp://live.example.com/app/"+key)
	if err != nil || !strings.Contains(out, "started") || strings.Contains(out, key) {
		t.Fatalf("start: %v %q", err, out)
	}
	out, err = run(append(env, "RESTREAM_URL=rtmps://live.example.com/app/"+key), "start", "--room", "standup")
	if err != nil || strings.Contains(out, key) {
		t.Fatalf("start from the environment: %v %q", err, out)
	}
	if out, err = run(env, "status", "--room", "standup"); err != nil || !strings.Contains(out, "live since 2001-09-09") {
		t.Fatalf("status: %v %q", err, out)
	}
	if _, err = run(env, "stop", "--room", "standup"); err == nil || !strings.Contains(err.Error(), "not streamed live") {
		t.Fatalf("stop without a restream: %v", err)
	}
	for _, bad := range [][]string{{"start", "--room", "standup"}, {"start", "--room", "standup", "--url", "http://x/y"}, {"stop"}, {"go"}} {
		if _, err := run(env, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	want := "POST /api/admin/rooms/standup/restream,POST /api/admin/rooms/standup/restream,GET /api/admin/rooms/standup/restream,DELETE /api/admin/rooms/standup/restream"
	if strings.Join(calls, ",") != want {
		t.Fatalf("calls %v, want %s", calls, want)
	}
	if urls[0] != "rtmp://live.example.com/app/"+key || urls[1] != "rtmps://live.example.com/app/"+key {
		t.Fatalf("URLs sent %v", urls)
	}
}
