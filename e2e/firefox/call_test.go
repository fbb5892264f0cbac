package firefox

import (
	"slices"
	"testing"
	"time"
)

// TestFirefoxAndChromiumCall puts a Firefox guest and a Chromium guest in
// one room: the web client must carry video and audio both ways between
// the two engines, and a leaver must vanish from the other's call,
// whichever engine leaves.
func TestFirefoxAndChromiumCall(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	srv := startServer(t)
	const room = "firefox-chromium"
	fox, ffb := joinFirefox(t, ctx, srv.URL, room, "Fox", Options{})
	t.Logf("Firefox %s", ffb.Version)
	chro := joinChromium(t, ctx, srv.URL, room, "Chro")
	both := []*participant{fox, chro}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What each browser sends and over which pair: a video that
		// never arrives is told apart from one that never left.
		for _, p := range both {
			out, err := eval[[]map[string]any](ctx, p, `window.parley.outbound()`)
			t.Logf("%s (%s) sends: %v (err %v)", p.Name, p.Engine, out, err)
			tr, err := eval[map[string]any](ctx, p, `window.parley.transport()`)
			t.Logf("%s (%s) transport: %v (err %v)", p.Name, p.Engine, tr, err)
		}
	})
	use := func(t *testing.T) {
		for _, p := range both {
			p.t = t
		}
	}

	t.Run("each sees and hears the other", func(t *testing.T) {
		use(t)
		for _, pair := range [][2]*participant{{fox, chro}, {chro, fox}} {
			p, other := pair[0], pair[1]
			got := p.waitSeesAndHears(ctx, other.Name)
			p.assertRising(ctx, got)
			p.waitPlaying(ctx, other.Name)
			p.checkTransport(ctx, srv.UDPPort)
			p.waitTiles(ctx, 15*time.Second, "both names", func(n []string) bool {
				return slices.Contains(n, p.Name+" (you)") && slices.Contains(n, other.Name)
			})
		}
	})

	t.Run("Firefox leaves and disappears for Chromium", func(t *testing.T) {
		use(t)
		leaveAndVanish(t, fox, chro)
	})

	t.Run("Firefox rejoins and media flows again", func(t *testing.T) {
		use(t)
		if err := fox.clickTestID(ctx, "rejoin-button"); err != nil {
			t.Fatal(err)
		}
		fox.waitJoined(ctx)
		for _, pair := range [][2]*participant{{fox, chro}, {chro, fox}} {
			p, other := pair[0], pair[1]
			p.assertRising(ctx, p.waitSeesAndHears(ctx, other.Name))
		}
	})

	t.Run("Chromium leaves and disappears for Firefox", func(t *testing.T) {
		use(t)
		leaveAndVanish(t, chro, fox)
	})
}

// leaveAndVanish has leaver press Leave and checks that it sees the end
// screen while stayer loses its participant entry, its remote tracks and
// its tile.
func leaveAndVanish(t *testing.T, leaver, stayer *participant) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	st, err := leaver.state(ctx)
	if err != nil || st.Self == nil {
		t.Fatalf("%s: state before leaving: %+v (err %v)", leaver.Name, st, err)
	}
	sid := st.Self.Sid
	if err := leaver.clickTestID(ctx, "leave-button"); err != nil {
		t.Fatal(err)
	}
	if !poll(ctx, 10*time.Second, func() bool {
		shown, err := eval[bool](ctx, leaver, `!document.querySelector('[data-testid="ended"]').hidden`)
		return err == nil && shown
	}) {
		t.Errorf("%s (%s): end screen not shown after leaving", leaver.Name, leaver.Engine)
	}
	stayer.waitState(ctx, 20*time.Second, "without "+leaver.Name, func(s clientState) bool {
		for _, o := range s.Participants {
			if o.Sid == sid {
				return false
			}
		}
		return len(s.Participants) == 0 && !hasPrefix(s.RemoteTracks, sid+"|")
	})
	stayer.waitTiles(ctx, 15*time.Second, "no tile for "+leaver.Name, func(n []string) bool {
		return !slices.Contains(n, leaver.Name) && len(n) == 1
	})
	// The receivers go with the server's renegotiation, which may land
	// a moment after the roster update.
	var stale []trackStat
	since := time.Now()
	if !poll(ctx, 15*time.Second, func() bool {
		stats, err := stayer.stats(ctx)
		stale = slices.DeleteFunc(stats, func(s trackStat) bool { return s.Participant != sid })
		return err == nil && len(stale) == 0
	}) {
		t.Errorf("%s (%s): still has tracks of %s 15 s after it left: %+v", stayer.Name, stayer.Engine, leaver.Name, stale)
	} else {
		t.Logf("%s (%s): receivers of %s gone %v after its tile", stayer.Name, stayer.Engine, leaver.Name, time.Since(since).Round(time.Millisecond))
	}
}
