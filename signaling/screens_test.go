package signaling

import (
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// TestScreenShareReachesSFU: a track the client announces with source
// "screen" is marked a screen share in the SFU once the SFU reports it,
// and one the SFU reported before its announcement is marked when the
// announcement comes; cameras and the screen's audio are not marked.
func TestScreenShareReachesSFU(t *testing.T) {
	env := startServer(t, nil)
	ada, aj := env.join("ada", "r", allGrants)
	fp := env.media.peer(t, aj.Participant.SID)
	marked := func(want ...string) {
		t.Helper()
		testkit.Eventually(t, waitLimit, "screen shares marked", func() bool { return slices.Equal(fp.screenShares(), want) })
	}

	ada.send("publish", "p1", proto.PublishBody{Tracks: []proto.TrackAnnouncement{
		{TrackID: "cam", Kind: "video", Source: "camera"},
		{TrackID: "scr", Kind: "video", Source: "screen"},
		{TrackID: "scra", Kind: "audio", Source: "screen_audio"},
	}})
	ada.expect("published")
	if got := fp.screenShares(); len(got) != 0 {
		t.Fatalf("marked before the SFU reported a track: %v", got)
	}
	for _, ti := range []sfu.TrackInfo{
		{SID: "TR_cam", ClientTrackID: "cam", Kind: "video"},
		{SID: "TR_scr", ClientTrackID: "scr", Kind: "video"},
		{SID: "TR_scra", ClientTrackID: "scra", Kind: "audio"},
	} {
		fp.opts.Events.TrackPublished(ti)
		ada.expect("participant_updated")
	}
	marked("TR_scr")

	// Media first: the SFU's track is taken for a camera until the
	// client's announcement says it is a screen.
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_late", ClientTrackID: "late", Kind: "video"})
	ada.expect("participant_updated")
	time.Sleep(50 * time.Millisecond) // for the rest of the event's handling
	if got := fp.screenShares(); !slices.Equal(got, []string{"TR_scr"}) {
		t.Fatalf("an unannounced track taken for a screen share: %v", got)
	}
	ada.send("publish", "p2", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "late", Kind: "video", Source: "screen"}}})
	ada.expect("participant_updated")
	ada.expect("published")
	marked("TR_late", "TR_scr")
}
