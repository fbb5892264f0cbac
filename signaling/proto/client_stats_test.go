package proto

import (
	"strings"
	"testing"
)

func TestClientStatsValidation(t *testing.T) {
	const good = `{"audio":{"tracks":2,"totalSamplesReceived":960000,"concealedSamples":4800,"silentConcealedSamples":800,"packetsReceived":1000,"packetsLost":3,"jitterMs":4.5},` +
		`"video":{"tracks":1,"framesDecoded":600,"framesDropped":2,"packetsLost":1,"freezeCount":0},"rttMs":12.5,"availableOutgoingBitrate":2500000}`
	tests := []struct {
		name string
		data string
		want string // "" valid, else a part of the error message
	}{
		{"full", good, ""},
		{"empty object: nothing received yet", `{}`, ""},
		{"negative counter", `{"audio":{"packetsLost":-1}}`, "audio.packetsLost"},
		{"counter beyond 2^53", `{"video":{"framesDecoded":9007199254740993}}`, "video.framesDecoded"},
		{"fractional counter", `{"audio":{"totalSamplesReceived":1.5}}`, "cannot unmarshal"},
		{"counter as string", `{"audio":{"concealedSamples":"1"}}`, "cannot unmarshal"},
		{"too many tracks", `{"audio":{"tracks":257}}`, "audio.tracks"},
		{"negative tracks", `{"video":{"tracks":-1}}`, "video.tracks"},
		{"jitter of minutes", `{"audio":{"jitterMs":60001}}`, "audio.jitterMs"},
		{"negative rtt", `{"rttMs":-0.5}`, "rttMs"},
		{"bitrate too high", `{"availableOutgoingBitrate":1e11}`, "availableOutgoingBitrate"},
		{"more concealed than received", `{"audio":{"totalSamplesReceived":10,"concealedSamples":11}}`, "cannot exceed"},
		{"more silent concealed than concealed", `{"audio":{"totalSamplesReceived":10,"concealedSamples":5,"silentConcealedSamples":6}}`, "audio.silentConcealedSamples cannot exceed"},
		{"not an object", `[1]`, "must be an object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, perr := DecodeRequest([]byte(`{"type":"client_stats","data":` + tc.data + `}`))
			if tc.want == "" {
				if perr != nil {
					t.Fatalf("refused: %v", perr)
				}
				if _, ok := req.Body.(*ClientStatsBody); !ok {
					t.Fatalf("body %T", req.Body)
				}
				return
			}
			if perr == nil || perr.Code != CodeBadRequest || !strings.Contains(perr.Message, tc.want) {
				t.Fatalf("got %v, want bad_request naming %q", perr, tc.want)
			}
		})
	}
	req, _ := DecodeRequest([]byte(`{"type":"client_stats","data":` + good + `}`))
	b := req.Body.(*ClientStatsBody)
	if b.Audio.ConcealedSamples != 4800 || b.Audio.SilentConcealedSamples != 800 || b.Video.FramesDropped != 2 || b.RTTMs != 12.5 || b.AvailableOutgoingBitrate != 2500000 || b.Audio.JitterMs != 4.5 {
		t.Fatalf("decoded %+v", b)
	}
	spec, _ := Lookup(TypeClientStats)
	if !spec.Has(NeedJoined|NeedCall) || spec.Has(NeedPublish) {
		t.Fatalf("client_stats needs %b: want joined and call, not publish (a viewer reports what it receives)", spec.Needs)
	}
}
