package signaling

import (
	"errors"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// An ingest stream is a participant viewers see join, publish, show an
// audio notice and leave, and admins cannot kick or mute it by mistake.
func TestIngestStreamParticipant(t *testing.T) {
	env := startServer(t, nil)
	viewer, _ := env.join("ada", "stage", allGrants)

	if err := env.srv.dir.AddStream("stage", "PA_stream1", "ingress-obs", "OBS"); err != nil {
		t.Fatal(err)
	}
	var joined proto.ParticipantBody
	viewer.expect(proto.TypeParticipantJoined).decode(t, &joined)
	if !joined.Participant.Stream || joined.Participant.Name != "OBS" || joined.Participant.SID != "PA_stream1" {
		t.Fatalf("joined %+v", joined.Participant)
	}
	if err := env.srv.dir.AddStream("stage", "PA_stream2", "ada", "dup"); !errors.Is(err, rooms.ErrIdentityInRoom) {
		t.Fatalf("a stream with a present identity: err %v", err)
	}

	env.srv.dir.StreamTrackPublished("stage", "PA_stream1", sfu.TrackInfo{SID: "TR_v", ClientTrackID: "video", Kind: "video"}, "camera")
	var upd proto.ParticipantBody
	viewer.expect(proto.TypeParticipantUpdated).decode(t, &upd)
	if len(upd.Participant.Tracks) != 1 || upd.Participant.Tracks[0].SID != "TR_v" || upd.Participant.Tracks[0].Source != "camera" {
		t.Fatalf("updated %+v", upd.Participant)
	}
	env.srv.dir.StreamAudioUnavailable("stage", "PA_stream1", "ffmpeg not found")
	viewer.expect(proto.TypeParticipantUpdated).decode(t, &upd)
	if upd.Participant.Notice != "audio unavailable: ffmpeg not found" {
		t.Fatalf("notice %q", upd.Participant.Notice)
	}

	if code, body := env.admin("DELETE", "/api/admin/rooms/stage/participants/ingress-obs", ""); code != http.StatusConflict {
		t.Fatalf("admin remove of a stream: %d %s", code, body)
	}
	if code, body := env.admin("POST", "/api/admin/rooms/stage/participants/ingress-obs/tracks/TR_v/mute", `{"muted":true}`); code != http.StatusConflict {
		t.Fatalf("admin mute of a stream track: %d %s", code, body)
	}

	env.srv.dir.RemoveStream("stage", "PA_stream1")
	var left proto.ParticipantLeftBody
	viewer.expect(proto.TypeParticipantLeft).decode(t, &left)
	if left.SID != "PA_stream1" {
		t.Fatalf("left %+v", left)
	}
}
