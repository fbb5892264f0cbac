package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// adminParticipants is the part of the admin API's participant listing
// (docs/protocol.md) that says which layer each subscriber receives.
type adminParticipants struct {
	Participants []struct {
		SID      string `json:"sid"`
		Identity string `json:"identity"`
		Tracks   []struct {
			SID   string `json:"sid"`
			Kind  string `json:"kind"`
			Stats *struct {
				Receivers []struct {
					Participant string `json:"participant"`
					Layer       string `json:"layer"`
				} `json:"receivers"`
			} `json:"stats"`
		} `json:"tracks"`
	} `json:"participants"`
}

// checkReceivers asks the server which layer of each publisher's video
// each subscriber receives and compares it with the layer the
// subscriber asked for: the server's own view, next to what the
// subscribers' packets say.
func checkReceivers(ctx context.Context, o Options, want func(identity string) (rid string, ok bool)) (checked int, wrong []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := strings.TrimSuffix(o.Origin, "/") + "/api/admin/rooms/" + url.PathEscape(o.Room) + "/participants"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(o.AdminKey, o.AdminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin API: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("admin API: %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	var ps adminParticipants
	if err := json.Unmarshal(raw, &ps); err != nil {
		return 0, nil, fmt.Errorf("admin API: %w", err)
	}
	identity := map[string]string{}
	for _, p := range ps.Participants {
		identity[p.SID] = p.Identity
	}
	for _, p := range ps.Participants {
		for _, t := range p.Tracks {
			if t.Kind != "video" || t.Stats == nil {
				continue
			}
			for _, r := range t.Stats.Receivers {
				id := identity[r.Participant]
				rid, ok := want(id)
				if !ok {
					continue
				}
				checked++
				if r.Layer != rid {
					wrong = append(wrong, fmt.Sprintf("%s gets %q of %s (wants %q)", id, r.Layer, p.Identity, rid))
				}
			}
		}
	}
	return checked, wrong, nil
}
