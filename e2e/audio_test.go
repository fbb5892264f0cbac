package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/promtext"
	"github.com/parleyhq/parley/internal/testkit"
)

// Audio of issue #11: the active speaker and RED, with real Chromium.
// Microphones are WAV files made by ffmpeg (no speech recording is in the
// repository): a "talker" plays speech-like bursts, a 220 Hz tone with
// harmonics, 0.8 s on and 0.2 s off, at about -14 dBFS; the others play
// digital silence.

// audioWAVs writes the talker's and the silent microphone's WAV files.
func audioWAVs(t *testing.T) (speech, silence string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is missing (Debian package ffmpeg): the microphones are generated with it")
	}
	dir := t.TempDir()
	speech, silence = filepath.Join(dir, "speech.wav"), filepath.Join(dir, "silence.wav")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "aevalsrc=0.2*(sin(2*PI*220*t)+0.5*sin(2*PI*440*t)+0.25*sin(2*PI*660*t))*lt(mod(t\\,1)\\,0.8):s=48000:d=120", speech},
		{"-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "120", silence},
	} {
		cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	return speech, silence
}

// speakerLimit is how soon after the talker's publisher connects every
// client must show it as the active speaker. Issue #11 asks for 1 s from
// the start of speech; from the connection (the first audio must reach
// the SFU, 300 ms of it count as speech, then the event travels) it took
// 1.4-1.6 s with the race-enabled server on the shared 2-core machine at
// a load average of 18, so the bound is 2 s until the network lab can
// time it from the first audio packet.
const speakerLimit = 2 * time.Second

func micFile(path string) BrowserOptions {
	return BrowserOptions{ExtraFlags: map[string]string{"use-file-for-fake-audio-capture": path}}
}

// speakersState is the part of window.parley.state() this file reads.
type speakersState struct {
	Status      string `json:"status"`
	Publisher   string `json:"publisher"`
	ConnectedAt int64  `json:"publisherConnectedAt"` // ms since the epoch
	Self        *struct {
		Identity string `json:"identity"`
	} `json:"self"`
	Speakers *struct {
		Active      string `json:"active"`
		ActiveSince int64  `json:"activeSince"`
		Speakers    []struct {
			Identity string  `json:"identity"`
			Level    float64 `json:"level"`
		} `json:"speakers"`
	} `json:"speakers"`
}

func (p *participant) speakers(ctx context.Context) (speakersState, error) {
	return Eval[speakersState](ctx, p.B, `window.parley.state()`)
}

// audioStat is the part of window.parley.stats() about received audio.
type audioStat struct {
	Participant          string `json:"participant"`
	Kind                 string `json:"kind"`
	TotalSamplesReceived int64  `json:"totalSamplesReceived"`
	ConcealedSamples     int64  `json:"concealedSamples"`
}

// TestAudioActiveSpeakerAndRED: two silent participants are in a call;
// a third joins and talks. Every client's "speakers" names the talker
// within speakerLimit of its publisher connection coming up, the talker's tile is
// highlighted with a level on its meter, the silent ones never become
// active, and every microphone is published as RED, which reaches the
// other Chromium clients as is (nothing unwrapped) and plays.
func TestAudioActiveSpeakerAndRED(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	speech, silence := audioWAVs(t)
	srv := startServer(t)
	const room = "audio-speakers"
	// The listeners' microphones play silence (joinQuery's browsers
	// would play the fake device's beep).
	anna := openMeeting(t, ctx, srv, room, "Anna", "", micFile(silence))
	ben := openMeeting(t, ctx, srv, room, "Ben", "", micFile(silence))
	for _, p := range []*participant{anna, ben} {
		p.waitState(ctx, 30*time.Second, "joined and publishing", func(s clientState) bool {
			return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
		})
	}

	// Opus DTX (the server's answer asks for it): in a quiet room a
	// silent microphone sends a packet every 400 ms or so, not 50 a
	// second. Measured before Tal talks: while someone talks, Chromium's
	// echo canceller adds comfort noise to a listener's silence and its
	// encoder sends every frame (seen: 14 packets in 3 s before, 158
	// while another talked).
	time.Sleep(2 * time.Second) // the encoders settle after joining
	fromAnna := func() int64 { return audioPacketsFrom(ctx, t, ben, "Anna") }
	before := fromAnna()
	time.Sleep(3 * time.Second)
	if n := fromAnna() - before; n > 30 || n < 1 {
		t.Errorf("Ben got %d packets from silent Anna in 3 s: want a few (DTX), not 150", n)
	} else {
		t.Logf("Ben got %d packets from silent Anna in 3 s (DTX)", n)
	}

	tal := openMeeting(t, ctx, srv, room, "Tal", "", micFile(speech))
	var talID string
	var t0 time.Time
	if !pollEvery(ctx, 30*time.Second, 20*time.Millisecond, func() bool {
		s, err := tal.speakers(ctx)
		if err != nil || s.Publisher != "connected" || s.Self == nil {
			return false
		}
		talID, t0 = s.Self.Identity, time.UnixMilli(s.ConnectedAt)
		return true
	}) {
		t.Fatal("Tal never published")
	}

	// The pages note when Tal's publisher connected and when their
	// active speaker changed (Date.now(), the same clock on this
	// machine), so the time taken does not depend on how fast the test
	// reads three browsers.
	everyone := []*participant{anna, ben, tal}
	for _, p := range everyone {
		var s speakersState
		if !poll(ctx, 5*time.Second, func() bool {
			var err error
			s, err = p.speakers(ctx)
			return err == nil && s.Speakers != nil && s.Speakers.Active == talID
		}) {
			t.Errorf("%s: Tal (%s) never became the active speaker: %+v", p.Name, talID, s.Speakers)
			continue
		}
		el := time.UnixMilli(s.Speakers.ActiveSince).Sub(t0)
		if el > speakerLimit {
			t.Errorf("%s: Tal became the active speaker %v after connecting (want within %v)", p.Name, el, speakerLimit)
		} else {
			t.Logf("%s: Tal active %v after connecting", p.Name, el)
		}
	}
	if t.Failed() {
		return
	}

	t.Run("the talker's tile is highlighted and its meter moves", func(t *testing.T) {
		anna.t = t
		type tile struct {
			Speaking bool   `json:"speaking"`
			Level    string `json:"level"`
			Name     string `json:"name"`
		}
		var tiles []tile
		ok := poll(ctx, 5*time.Second, func() bool {
			var err error
			tiles, err = Eval[[]tile](ctx, anna.B, `[...document.querySelectorAll('.tile')].map(el => ({
				speaking: el.classList.contains('speaking'),
				level: (el.querySelector('.level-meter') || {dataset: {}}).dataset.level || '',
				name: (el.querySelector('[data-testid="tile-name"]') || {}).textContent || ''}))`)
			if err != nil {
				return false
			}
			n := 0
			for _, x := range tiles {
				if x.Speaking {
					n++
					if x.Name != "Tal" || x.Level == "" || x.Level == "0" {
						return false
					}
				}
			}
			return n == 1
		})
		if !ok {
			t.Fatalf("Anna's tiles: %+v (want only Tal's speaking, with a level)", tiles)
		}
	})

	t.Run("the silent ones never become active", func(t *testing.T) {
		for _, p := range everyone {
			p.t = t
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			for _, p := range everyone {
				s, err := p.speakers(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if s.Speakers == nil || s.Speakers.Active != talID {
					t.Fatalf("%s: active speaker changed: %+v", p.Name, s.Speakers)
				}
				for _, sp := range s.Speakers.Speakers {
					if sp.Identity != talID {
						t.Fatalf("%s: a silent participant is listed as speaking: %+v", p.Name, s.Speakers)
					}
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	t.Run("muted, the talker sees the hint and nothing is forwarded; unmuted, audio resumes", func(t *testing.T) {
		tal.t, ben.t = t, t
		packetsFromTal := func() int64 { return audioPacketsFrom(ctx, t, ben, "Tal") }
		hint := func() bool {
			shown, err := Eval[bool](ctx, tal.B, `!document.querySelector('[data-testid="muted-hint"]').hidden`)
			return err == nil && shown
		}
		if err := tal.B.Click(ctx, `[data-testid="mic-toggle"]`); err != nil {
			t.Fatal(err)
		}
		if !poll(ctx, 5*time.Second, hint) {
			t.Fatal(`Tal talks while muted but sees no "You are muted" hint`)
		}
		// The server ignores a muted track's levels: Tal drops out of the
		// speaking list (it stays the active speaker until someone else
		// talks).
		if !poll(ctx, 5*time.Second, func() bool {
			s, err := ben.speakers(ctx)
			return err == nil && s.Speakers != nil && len(s.Speakers.Speakers) == 0
		}) {
			s, _ := ben.speakers(ctx)
			t.Fatalf("Ben still sees someone speaking while Tal is muted: %+v", s.Speakers)
		}
		time.Sleep(time.Second)
		p1 := packetsFromTal()
		time.Sleep(2 * time.Second)
		if p2 := packetsFromTal(); p2-p1 > 2 {
			t.Errorf("Ben received %d packets from muted Tal in 2 s", p2-p1)
		}
		if err := tal.B.Click(ctx, `[data-testid="mic-toggle"]`); err != nil {
			t.Fatal(err)
		}
		p3 := packetsFromTal()
		if !poll(ctx, 5*time.Second, func() bool { return packetsFromTal()-p3 > 50 && !hint() }) {
			t.Fatalf("after unmuting, Ben gets no audio from Tal (%d packets) or the hint stays", packetsFromTal()-p3)
		}
		if !poll(ctx, 5*time.Second, func() bool {
			s, err := ben.speakers(ctx)
			return err == nil && s.Speakers != nil && len(s.Speakers.Speakers) == 1 && s.Speakers.Speakers[0].Identity == talID
		}) {
			t.Fatal("Tal does not speak again for Ben after unmuting")
		}
	})

	t.Run("Chromium receives the talker's audio as RED and plays it", func(t *testing.T) {
		ben.t = t
		var talSID string
		ben.waitState(ctx, 10*time.Second, "Tal in the roster", func(s clientState) bool {
			for _, p := range s.Participants {
				if p.Name == "Tal" {
					talSID = p.Sid
					return true
				}
			}
			return false
		})
		read := func() (audioStat, bool) {
			all, err := Eval[[]audioStat](ctx, ben.B, `window.parley.stats()`)
			if err != nil {
				return audioStat{}, false
			}
			for _, a := range all {
				if a.Participant == talSID && a.Kind == "audio" {
					return a, true
				}
			}
			return audioStat{}, false
		}
		var first audioStat
		if !poll(ctx, 10*time.Second, func() bool {
			var ok bool
			first, ok = read()
			return ok && first.TotalSamplesReceived > 0
		}) {
			t.Fatalf("Ben receives no audio from Tal: %+v", first)
		}
		time.Sleep(3 * time.Second)
		last, _ := read()
		got := last.TotalSamplesReceived - first.TotalSamplesReceived
		if got < 48000*2 { // 3 s at 48 kHz, with slack
			t.Errorf("Ben received %d samples in 3 s", got)
		}
		if c := float64(last.ConcealedSamples-first.ConcealedSamples) / float64(max(got, 1)); c > 0.03 {
			t.Errorf("Ben concealed %.1f%% of Tal's audio without loss", c*100)
		}
		// Chromium's getStats names the decoded codec (audio/opus) even
		// for RED; the server says what was negotiated and published,
		// and that no subscriber needed RED unwrapped.
		code, body := adminDo(t, srv, http.MethodGet, "/api/admin/rooms/"+room+"/participants", nil)
		if code != http.StatusOK || strings.Count(body, `"codec":"audio/red"`) != 3 || strings.Contains(body, `"codec":"audio/opus"`) {
			t.Errorf("admin API (%d): want every microphone published as audio/red: %s", code, body)
		}
		if n := metricValue(t, srv, "parley_sfu_red_unwrapped_total"); n != 0 {
			t.Errorf("parley_sfu_red_unwrapped_total = %v: a Chromium subscriber did not take RED as is", n)
		}
		t.Logf("Ben from Tal: %d samples in 3 s, %d concealed", got, last.ConcealedSamples-first.ConcealedSamples)
	})
	t.Run("the admin API shows every participant's client stats", func(t *testing.T) {
		// Each client sends its getStats() summary every 10 s; everyone
		// has been in the call longer than that by now, so one more
		// period bounds the wait.
		type clientStats struct {
			Audio struct {
				Tracks               int   `json:"tracks"`
				TotalSamplesReceived int64 `json:"totalSamplesReceived"`
			} `json:"audio"`
			ConcealedRatio float64   `json:"concealedRatio"`
			ReceivedAt     time.Time `json:"receivedAt"`
		}
		type view struct {
			Participants []struct {
				Name        string       `json:"name"`
				ClientStats *clientStats `json:"clientStats"`
			} `json:"participants"`
		}
		var body view
		var raw string
		ok := poll(ctx, 12*time.Second, func() bool {
			code, b := adminDo(t, srv, http.MethodGet, "/api/admin/rooms/"+room+"/participants", nil)
			raw, body = b, view{}
			if code != http.StatusOK || json.Unmarshal([]byte(b), &body) != nil || len(body.Participants) != 3 {
				return false
			}
			for _, p := range body.Participants {
				// Everyone receives the two others' microphones.
				if cs := p.ClientStats; cs == nil || cs.Audio.Tracks != 2 || cs.Audio.TotalSamplesReceived == 0 {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("admin API does not show every participant's client stats: %s", raw)
		}
		for _, p := range body.Participants {
			if age := time.Since(p.ClientStats.ReceivedAt); age < 0 || age > 30*time.Second {
				t.Errorf("%s's client stats were received %v ago", p.Name, age)
			}
			t.Logf("%s: %d samples received, %.2f%% concealed (client-reported)", p.Name,
				p.ClientStats.Audio.TotalSamplesReceived, p.ClientStats.ConcealedRatio*100)
		}
		if n := metricValue(t, srv, "parley_client_audio_samples_received_total"); n <= 0 {
			t.Errorf("parley_client_audio_samples_received_total = %v after the clients reported", n)
		}
	})
}

// metricValue reads one unlabelled sample from the server's /metrics.
func metricValue(t *testing.T, srv *server, name string) float64 {
	t.Helper()
	series, err := promtext.Scrape(context.Background(), srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := series.Value(name)
	if !ok {
		t.Fatalf("%s not in /metrics", name)
	}
	return v
}

// pollEvery is poll with a chosen interval.
func pollEvery(ctx context.Context, limit, every time.Duration, f func() bool) bool {
	return testkit.Poll(ctx, limit, every, f)
}

// audioPacketsFrom is how many audio packets viewer's page received from
// the participant named name (its getStats()); it fails the test when
// the page has no such track.
func audioPacketsFrom(ctx context.Context, t *testing.T, viewer *participant, name string) int64 {
	t.Helper()
	all, err := Eval[[]struct {
		Name            string `json:"name"`
		Kind            string `json:"kind"`
		PacketsReceived int64  `json:"packetsReceived"`
	}](ctx, viewer.B, `window.parley.stats()`)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.Name == name && a.Kind == "audio" {
			return a.PacketsReceived
		}
	}
	t.Fatalf("%s has no audio track from %s", viewer.Name, name)
	return 0
}
