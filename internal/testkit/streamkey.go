package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// CreateStreamKey makes an ingest stream key for room through the admin
// API of the Parley at baseURL (started with ParleyAPIKey), as an
// operator's tooling would, and returns the key's id and secret.
func CreateStreamKey(t testing.TB, baseURL, room, name string) (id, secret string) {
	t.Helper()
	body := fmt.Sprintf(`{"room":%q,"name":%q}`, room, name)
	req, err := http.NewRequest(http.MethodPost, baseURL+"/api/admin/ingress", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(ParleyAPIKey, ParleyAPISecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out struct {
		Key struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Key.Key == "" {
		t.Fatalf("create a stream key through %s: HTTP %d, %v, %+v", baseURL, resp.StatusCode, err, out)
	}
	return out.Key.ID, out.Key.Key
}
