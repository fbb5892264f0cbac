package signaling

import (
	"testing"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

func TestQualityBody(t *testing.T) {
	levels := map[string]sfu.Quality{"PA_b": sfu.QualityPoor, "PA_a": sfu.QualityExcellent, "PA_gone": sfu.QualityLost}
	ids := map[string]string{"PA_a": "ada", "PA_b": "bob"}
	got := string(proto.Encode(proto.TypeConnectionQuality, "", qualityBody(levels, ids)))
	want := `{"type":"connection_quality","data":{"participants":[{"identity":"ada","quality":"excellent"},{"identity":"bob","quality":"poor"}]}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
