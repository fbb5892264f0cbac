package signaling

import (
	"testing"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// TestSpeakersBody checks the wire shape the web client reads and the
// mapping from SFU participant ids to identities.
func TestSpeakersBody(t *testing.T) {
	ids := map[string]string{"PA_1": "ada", "PA_2": "bob"}
	tests := []struct {
		name string
		u    sfu.SpeakerUpdate
		want string
	}{
		{"two speaking", sfu.SpeakerUpdate{Active: "PA_1", Speakers: []sfu.Speaker{{ParticipantID: "PA_1", Level: 0.65}, {ParticipantID: "PA_2", Level: 0.3}}},
			`{"type":"speakers","data":{"active":"ada","speakers":[{"identity":"ada","level":0.65},{"identity":"bob","level":0.3}]}}`},
		{"nobody speaks", sfu.SpeakerUpdate{Active: "PA_2"},
			`{"type":"speakers","data":{"active":"bob","speakers":[]}}`},
		{"the active one left", sfu.SpeakerUpdate{Active: "PA_9", Speakers: []sfu.Speaker{{ParticipantID: "PA_9", Level: 1}, {ParticipantID: "PA_1", Level: 0.5}}},
			`{"type":"speakers","data":{"active":"","speakers":[{"identity":"ada","level":0.5}]}}`},
	}
	for _, tc := range tests {
		if got := string(proto.Encode(proto.TypeSpeakers, "", speakersBody(tc.u, ids))); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
