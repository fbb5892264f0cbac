package signaling

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
)

// Other components' endpoints must be reachable under /api/ (the
// catch-all 404 must not shadow them), and admin ones only with admin
// credentials valid for every room.
func TestExtraRoutes(t *testing.T) {
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	ok := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })
	}
	srv, err := New(testConfig(), Deps{Media: newFakeMedia(), Keys: keys,
		Routes:      map[string]http.Handler{"/api/turn/credentials": ok("turn"), "/whip": ok("whip")},
		AdminRoutes: map[string]http.Handler{"/api/admin/ingress": ok("ingress")},
	})
	if err != nil {
		t.Fatal(err)
	}
	roomAdmin, _ := keys.Issue(testKeyID, auth.Claims{Identity: "mod", Room: "r", Grants: auth.Grants{Admin: true}}, time.Hour)
	allAdmin, _ := keys.Issue(testKeyID, auth.Claims{Identity: "op", Room: auth.AllRooms, Grants: auth.Grants{Admin: true}}, time.Hour)
	cases := []struct {
		name, path, bearer string
		basic              bool
		want               int
		body               string
	}{
		{"extra api route", "/api/turn/credentials", "", false, 200, "turn"},
		{"extra non-api route", "/whip", "", false, 200, "whip"},
		{"unknown api path still 404", "/api/nothing", "", false, 404, ""},
		{"admin route without auth", "/api/admin/ingress", "", false, 401, ""},
		{"admin route with room-scoped admin", "/api/admin/ingress", roomAdmin, false, 403, ""},
		{"admin route with all-rooms admin", "/api/admin/ingress", allAdmin, false, 200, "ingress"},
		{"admin route with API key", "/api/admin/ingress", "", true, 200, "ingress"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			if tc.basic {
				req.SetBasicAuth(testKeyID, testSecret)
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want || (tc.body != "" && rec.Body.String() != tc.body) {
				t.Fatalf("status %d body %q, want %d %q", rec.Code, rec.Body.String(), tc.want, tc.body)
			}
		})
	}
}
