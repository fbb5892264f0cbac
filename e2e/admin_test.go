package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// adminDo calls the admin API with the test's API key (HTTP Basic).
func adminDo(t *testing.T, srv *server, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testAPIKey, testAPISecret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(raw)
}

// TestModeratorMuteAndRemove checks the client's side of the admin
// actions: a `muted` message disables the track and shows it everywhere,
// and `bye` with reason `removed` ends the call without a rejoin.
func TestModeratorMuteAndRemove(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-moderation"
	gus := join(t, ctx, srv, room, "Gus")
	hal := join(t, ctx, srv, room, "Hal")
	waitSeesOthers(ctx, gus, hal)

	view := gus.waitState(ctx, 15*time.Second, "Hal's microphone listed", func(s clientState) bool {
		for _, p := range s.Participants {
			for _, tr := range p.Tracks {
				if p.Name == "Hal" && tr.Source == "microphone" {
					return true
				}
			}
		}
		return false
	})
	var identity, halSid, micSid string
	for _, p := range view.Participants {
		if p.Name == "Hal" {
			identity, halSid = p.Identity, p.Sid
			for _, tr := range p.Tracks {
				if tr.Source == "microphone" {
					micSid = tr.Sid
				}
			}
		}
	}

	path := fmt.Sprintf("/api/admin/rooms/%s/participants/%s/tracks/%s/mute", room, url.PathEscape(identity), micSid)
	if code, body := adminDo(t, srv, http.MethodPost, path, []byte(`{"muted":true}`)); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("admin mute: status %d %s", code, body)
	}
	if !poll(ctx, 10*time.Second, func() bool {
		v, err := Eval[bool](ctx, hal.B, `window.parley.state().local.microphone.enabled`)
		return err == nil && !v
	}) {
		t.Fatalf("Hal: microphone still enabled after a moderator muted it")
	}
	pressed, err := Eval[string](ctx, hal.B, `document.querySelector('[data-testid="mic-toggle"]').getAttribute('aria-pressed')`)
	if err != nil || pressed != "true" {
		t.Errorf("Hal: mic button aria-pressed=%q (err %v), want true", pressed, err)
	}
	banner, _ := Eval[string](ctx, hal.B, `document.querySelector('[data-testid="banner"]').textContent`)
	if banner == "" {
		t.Errorf("Hal: no notice that a moderator muted the microphone")
	}
	hal.shot(ctx, "muted-by-moderator")
	sel := fmt.Sprintf(`document.querySelector('[data-testid="tile"][data-participant=%q]')?.dataset.micMuted`, halSid)
	var shown string
	if !poll(ctx, 10*time.Second, func() bool {
		shown, _ = Eval[string](ctx, gus.B, sel)
		return shown == "true"
	}) {
		t.Errorf("Gus: Hal's tile mic-muted = %q after the moderator mute, want true", shown)
	}

	// Removal: Hal's page ends with a reason and stays out.
	del := fmt.Sprintf("/api/admin/rooms/%s/participants/%s", room, url.PathEscape(identity))
	if code, body := adminDo(t, srv, http.MethodDelete, del, nil); code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("admin remove: status %d %s", code, body)
	}
	hal.waitState(ctx, 10*time.Second, "removed", func(s clientState) bool { return s.Status == "closed" })
	msg, err := Eval[string](ctx, hal.B, `document.querySelector('[data-testid="ended-message"]').textContent`)
	if err != nil || msg != "You were removed from the call." {
		t.Errorf("Hal: end message %q (err %v)", msg, err)
	}
	gus.waitTiles(ctx, 15*time.Second, "no tile for Hal", func(n []string) bool { return !slices.Contains(n, "Hal") })
	// No automatic rejoin: after the first backoff step Hal is still out.
	time.Sleep(3 * time.Second)
	if s, err := gus.state(ctx); err != nil || len(s.Participants) != 0 {
		t.Errorf("Gus: participants after Hal's removal: %+v (err %v), want none", s.Participants, err)
	}
	hal.shot(ctx, "removed")
}

// TestViewerWithoutPublishGrant joins with an operator-issued token that
// may only subscribe, handed out as a #token= link: the viewer sees and
// hears the call, appears in the others' grids, and does not loop.
func TestViewerWithoutPublishGrant(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-viewer"
	ivy := join(t, ctx, srv, room, "Ivy")

	code, body := adminDo(t, srv, http.MethodPost, "/api/admin/tokens",
		[]byte(`{"room":"`+room+`","identity":"viewer-1","name":"Viewer","ttl":"10m","grants":["subscribe"]}`))
	if code != http.StatusOK {
		t.Fatalf("admin token: status %d %s", code, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.Token == "" {
		t.Fatalf("admin token: body %s (%v)", body, err)
	}
	viewer := startBrowser(t, ctx, "Viewer")
	if err := viewer.B.Navigate(ctx, srv.URL+"/r/"+room+"#token="+tok.Token); err != nil {
		t.Fatal(err)
	}
	viewer.waitState(ctx, 30*time.Second, "joined as a viewer", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Self.Name == "Viewer"
	})
	waitSeesOthers(ctx, viewer, ivy)
	ivy.waitTiles(ctx, 15*time.Second, "the viewer's tile", func(n []string) bool { return slices.Contains(n, "Viewer") })
	stats, err := ivy.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Name == "Viewer" {
			t.Errorf("Ivy receives a %s track from a viewer without the publish grant", s.Kind)
		}
	}
	// A view-only client holds no camera or microphone.
	local, err := Eval[map[string]any](ctx, viewer.B, `window.parley.state().local`)
	if err != nil || local["camera"] != nil || local["microphone"] != nil {
		t.Errorf("viewer still holds local devices: %v (err %v)", local, err)
	}
	time.Sleep(3 * time.Second)
	s, err := viewer.state(ctx)
	if err != nil || s.Reconnects != 0 || s.Status != "connected" {
		t.Errorf("viewer after 3 s: %+v (err %v), want connected with no rejoin", s, err)
	}
	viewer.shot(ctx, "viewer")
}
