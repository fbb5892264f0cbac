package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// adminParticipants is the part of GET /api/admin/rooms/{room}/participants
// the scenarios read: who publishes which track, and the layer the
// server forwards of it to each subscriber.
type adminParticipants struct {
	Participants []struct {
		SID    string `json:"sid"`
		Name   string `json:"name"`
		Tracks []struct {
			SID    string           `json:"sid"`
			Kind   string           `json:"kind"`
			Source string           `json:"source"`
			Stats  *adminTrackStats `json:"stats"`
		} `json:"tracks"`
	} `json:"participants"`
}

// adminTrackStats is the part of a track's stats the scenarios read.
type adminTrackStats struct {
	Receivers []struct {
		Participant  string     `json:"participant"`
		Layer        string     `json:"layer"`
		EstimatedBps int        `json:"estimatedBps"`
		LayerSince   *time.Time `json:"layerSince"`
		View         *struct {
			Visible bool `json:"visible"`
		} `json:"view"`
	} `json:"receivers"`
	Layers []struct {
		RID         string     `json:"rid"`
		BitrateBps  float64    `json:"bitrateBps"`
		LastMediaAt *time.Time `json:"lastMediaAt"`
	} `json:"layers"`
}

// cameras yields each publisher's camera track (by the publisher's
// name) with its stats; a camera the server has no stats for is left
// out.
func (ap adminParticipants) cameras() iter.Seq2[string, *adminTrackStats] {
	return func(yield func(string, *adminTrackStats) bool) {
		for _, p := range ap.Participants {
			for _, tr := range p.Tracks {
				if tr.Kind != "video" || tr.Source != "camera" || tr.Stats == nil {
					continue
				}
				if !yield(p.Name, tr.Stats) {
					return
				}
			}
		}
	}
}

// names maps the participants' sids to their names.
func (ap adminParticipants) names() map[string]string {
	names := map[string]string{}
	for _, p := range ap.Participants {
		names[p.SID] = p.Name
	}
	return names
}

// cameraLayers asks the server which simulcast layer (rid) of each
// publisher's camera it forwards to each subscriber now, by names:
// layers[publisher][subscriber], "" while it forwards none. A
// subscriber the server does not list for a camera is absent.
func (c *call) cameraLayers(ctx context.Context) (map[string]map[string]string, error) {
	ap, err := c.adminParticipants(ctx)
	if err != nil {
		return nil, err
	}
	names := ap.names()
	out := map[string]map[string]string{}
	for pub, st := range ap.cameras() {
		m := map[string]string{}
		for _, r := range st.Receivers {
			m[names[r.Participant]] = r.Layer
		}
		out[pub] = m
	}
	return out, nil
}

// viewsOf asks the server how sub's page last reported showing each
// publisher's camera (by publisher name): true for a visible tile,
// false for a hidden one; a camera it has no report of is absent.
func (c *call) viewsOf(ctx context.Context, sub string) (map[string]bool, error) {
	ap, err := c.adminParticipants(ctx)
	if err != nil {
		return nil, err
	}
	names := ap.names()
	out := map[string]bool{}
	for pub, st := range ap.cameras() {
		for _, r := range st.Receivers {
			if names[r.Participant] == sub && r.View != nil {
				out[pub] = r.View.Visible
			}
		}
	}
	return out, nil
}

// layerRates asks the server what each layer of each publisher's
// camera (by name, then rid) arrives at now, bit/s over the last second.
func (c *call) layerRates(ctx context.Context) (map[string]map[string]float64, error) {
	ap, err := c.adminParticipants(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]float64{}
	for pub, st := range ap.cameras() {
		m := map[string]float64{}
		for _, l := range st.Layers {
			m[l.RID] = l.BitrateBps
		}
		out[pub] = m
	}
	return out, nil
}

// cameraView is what the server says of one publisher's camera: when
// each layer's newest media arrived (by rid; absent before the first),
// and the layer each subscriber (by name) receives and since when.
type cameraView struct {
	lastMedia map[string]time.Time
	receivers map[string]receiverView
}

type receiverView struct {
	layer string
	since time.Time
}

// camera asks the server for the view of pub's camera (empty maps when
// it has none yet).
func (c *call) camera(ctx context.Context, pub string) (cameraView, error) {
	v := cameraView{lastMedia: map[string]time.Time{}, receivers: map[string]receiverView{}}
	ap, err := c.adminParticipants(ctx)
	if err != nil {
		return v, err
	}
	names := ap.names()
	for name, st := range ap.cameras() {
		if name != pub {
			continue
		}
		for _, l := range st.Layers {
			if l.LastMediaAt != nil {
				v.lastMedia[l.RID] = *l.LastMediaAt
			}
		}
		for _, r := range st.Receivers {
			rv := receiverView{layer: r.Layer}
			if r.LayerSince != nil {
				rv.since = *r.LayerSince
			}
			v.receivers[names[r.Participant]] = rv
		}
	}
	return v, nil
}

// estimate is the server's bandwidth estimate for the named
// subscriber, bit/s (0 when unknown).
func (c *call) estimate(ctx context.Context, name string) int {
	ap, err := c.adminParticipants(ctx)
	if err != nil {
		return 0
	}
	sid := ""
	for _, p := range ap.Participants {
		if p.Name == name {
			sid = p.SID
		}
	}
	for _, p := range ap.Participants {
		for _, tr := range p.Tracks {
			if tr.Stats == nil {
				continue
			}
			for _, r := range tr.Stats.Receivers {
				if r.Participant == sid && r.EstimatedBps > 0 {
					return r.EstimatedBps
				}
			}
		}
	}
	return 0
}

// adminParticipants reads the room's participants from the admin API.
func (c *call) adminParticipants(ctx context.Context) (*adminParticipants, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.srv.URL+"/api/admin/rooms/"+url.PathEscape(c.room)+"/participants", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(testkit.ParleyAPIKey, testkit.ParleyAPISecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin participants: %d %s", resp.StatusCode, body)
	}
	var ap adminParticipants
	if err := json.Unmarshal(body, &ap); err != nil {
		return nil, fmt.Errorf("admin participants: %w", err)
	}
	return &ap, nil
}
