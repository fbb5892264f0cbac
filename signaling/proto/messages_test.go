package proto

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	long := strings.Repeat("x", 65)
	tests := []struct {
		name     string
		in       string
		wantType string
		wantID   string
		wantCode string // "" means valid
		check    func(t *testing.T, r Request)
	}{
		{name: "join", in: `{"type":"join","id":"1","data":{"token":"abc","protocol":1,"name":"Ada"}}`, wantType: "join", wantID: "1",
			check: func(t *testing.T, r Request) {
				b := r.Body.(*JoinBody)
				if b.Token != "abc" || b.Protocol != 1 || b.Name != "Ada" {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "join without token", in: `{"type":"join","data":{"protocol":1}}`, wantType: "join", wantCode: CodeUnauthorized},
		{name: "join protocol as string", in: `{"type":"join","data":{"token":"a","protocol":"1"}}`, wantType: "join", wantCode: CodeBadRequest},
		{name: "join without data", in: `{"type":"join"}`, wantType: "join", wantCode: CodeBadRequest},
		{name: "join data null", in: `{"type":"join","data":null}`, wantType: "join", wantCode: CodeBadRequest},
		{name: "join data array", in: `{"type":"join","data":[1]}`, wantType: "join", wantCode: CodeBadRequest},
		{name: "join name too long", in: `{"type":"join","data":{"token":"a","protocol":1,"name":"` + strings.Repeat("é", 65) + `"}}`, wantType: "join", wantCode: CodeBadRequest},
		{name: "malformed JSON", in: `{"type":"join",`, wantCode: CodeBadRequest},
		{name: "not an object", in: `[]`, wantCode: CodeBadRequest},
		{name: "invalid UTF-8", in: "{\"type\":\"pong\",\"data\":{\"ts\":1},\"x\":\"\xff\"}", wantCode: CodeBadRequest},
		{name: "missing type", in: `{"id":"1","data":{}}`, wantID: "1", wantCode: CodeBadRequest},
		{name: "id too long", in: `{"type":"pong","id":"` + long + `","data":{"ts":1}}`, wantType: "pong", wantCode: CodeBadRequest},
		{name: "client sends re", in: `{"type":"pong","re":"1","data":{"ts":1}}`, wantType: "pong", wantCode: CodeBadRequest},
		{name: "unknown type", in: `{"type":"dance","id":"9"}`, wantType: "dance", wantID: "9", wantCode: CodeUnknownType},
		{name: "publish", in: `{"type":"publish","id":"2","data":{"tracks":[{"trackId":"t1","kind":"video","source":"camera"},{"trackId":"t2","kind":"audio","source":"microphone","muted":true}]}}`, wantType: "publish", wantID: "2",
			check: func(t *testing.T, r Request) {
				b := r.Body.(*PublishBody)
				if len(b.Tracks) != 2 || !b.Tracks[1].Muted || b.Tracks[0].Source != "camera" {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "publish screen share", in: `{"type":"publish","data":{"tracks":[{"trackId":"s","kind":"video","source":"screen"},{"trackId":"sa","kind":"audio","source":"screen_audio"}]}}`, wantType: "publish"},
		{name: "publish empty", in: `{"type":"publish","data":{"tracks":[]}}`, wantType: "publish", wantCode: CodeBadRequest},
		{name: "publish bad source", in: `{"type":"publish","data":{"tracks":[{"trackId":"t","kind":"video","source":"webcam"}]}}`, wantType: "publish", wantCode: CodeBadRequest},
		{name: "publish kind mismatch", in: `{"type":"publish","data":{"tracks":[{"trackId":"t","kind":"audio","source":"camera"}]}}`, wantType: "publish", wantCode: CodeBadRequest},
		{name: "publish duplicate track", in: `{"type":"publish","data":{"tracks":[{"trackId":"t","kind":"video","source":"camera"},{"trackId":"t","kind":"video","source":"screen"}]}}`, wantType: "publish", wantCode: CodeBadRequest},
		{name: "publish no trackId", in: `{"type":"publish","data":{"tracks":[{"kind":"video","source":"camera"}]}}`, wantType: "publish", wantCode: CodeBadRequest},
		{name: "publish trackId too long", in: `{"type":"publish","data":{"tracks":[{"trackId":"` + strings.Repeat("a", 129) + `","kind":"video","source":"camera"}]}}`, wantType: "publish", wantCode: CodeBadRequest},
		{name: "publish too many", in: `{"type":"publish","data":{"tracks":[` + strings.TrimSuffix(strings.Repeat(`{"trackId":"t","kind":"video","source":"camera"},`, 17), ",") + `]}}`, wantType: "publish", wantCode: CodeBadRequest},
		{name: "unpublish", in: `{"type":"unpublish","data":{"trackId":"t1"}}`, wantType: "unpublish"},
		{name: "unpublish empty", in: `{"type":"unpublish","data":{}}`, wantType: "unpublish", wantCode: CodeBadRequest},
		{name: "offer", in: `{"type":"offer","id":"3","data":{"sdp":"v=0","iceRestart":true}}`, wantType: "offer", wantID: "3",
			check: func(t *testing.T, r Request) {
				if b := r.Body.(*SDPBody); b.SDP != "v=0" || !b.ICERestart {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "offer without sdp", in: `{"type":"offer","data":{}}`, wantType: "offer", wantCode: CodeBadRequest},
		{name: "answer", in: `{"type":"answer","data":{"sdp":"v=0"}}`, wantType: "answer"},
		{name: "candidate", in: `{"type":"candidate","data":{"target":"subscriber","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}}`, wantType: "candidate",
			check: func(t *testing.T, r Request) {
				b := r.Body.(*CandidateBody)
				if b.Target != "subscriber" || *b.Candidate.SDPMid != "0" || *b.Candidate.SDPMLineIndex != 0 {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "end of candidates", in: `{"type":"candidate","data":{"target":"publisher","candidate":{"candidate":""}}}`, wantType: "candidate"},
		{name: "candidate bad target", in: `{"type":"candidate","data":{"target":"both","candidate":{"candidate":""}}}`, wantType: "candidate", wantCode: CodeBadRequest},
		{name: "candidate missing", in: `{"type":"candidate","data":{"target":"publisher"}}`, wantType: "candidate", wantCode: CodeBadRequest},
		{name: "candidate line index out of range", in: `{"type":"candidate","data":{"target":"publisher","candidate":{"candidate":"","sdpMLineIndex":70000}}}`, wantType: "candidate", wantCode: CodeBadRequest},
		{name: "ice_restart", in: `{"type":"ice_restart"}`, wantType: "ice_restart"},
		{name: "mute", in: `{"type":"mute","data":{"trackId":"t","muted":false}}`, wantType: "mute",
			check: func(t *testing.T, r Request) {
				if b := r.Body.(*MuteBody); *b.Muted {
					t.Fatal("muted should be false")
				}
			}},
		{name: "mute without muted", in: `{"type":"mute","data":{"trackId":"t"}}`, wantType: "mute", wantCode: CodeBadRequest},
		{name: "pong", in: `{"type":"pong","data":{"ts":1732233600000}}`, wantType: "pong"},
		{name: "leave", in: `{"type":"leave"}`, wantType: "leave"},
		{name: "leave with data ignored", in: `{"type":"leave","data":{"x":1}}`, wantType: "leave"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, perr := DecodeRequest([]byte(tc.in))
			if req.Type != tc.wantType || req.ID != tc.wantID {
				t.Fatalf("type/id = %q/%q, want %q/%q", req.Type, req.ID, tc.wantType, tc.wantID)
			}
			if tc.wantCode == "" {
				if perr != nil {
					t.Fatalf("unexpected error %v", perr)
				}
				if tc.check != nil {
					tc.check(t, req)
				}
				return
			}
			if perr == nil || perr.Code != tc.wantCode {
				t.Fatalf("error = %v, want code %s", perr, tc.wantCode)
			}
			if perr.Message == "" {
				t.Fatal("error without message")
			}
		})
	}
}

func TestEncodeEnvelope(t *testing.T) {
	raw := Encode(TypeError, "7", ErrorBody{Code: CodeForbidden, Message: "no"})
	var got struct {
		Type string          `json:"type"`
		Re   string          `json:"re"`
		ID   *string         `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "error" || got.Re != "7" || got.ID != nil || string(got.Data) != `{"code":"forbidden","message":"no"}` {
		t.Fatalf("encoded %s", raw)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		`{"type":"join","id":"1","data":{"token":"abc","protocol":1}}`,
		`{"type":"publish","data":{"tracks":[{"trackId":"t","kind":"video","source":"camera"}]}}`,
		`{"type":"candidate","data":{"target":"publisher","candidate":{"candidate":"x","sdpMLineIndex":1}}}`,
		`{"type":"mute","data":{"trackId":"t","muted":true}}`,
		`{"type":"leave"}`, `{`, `null`, `{"type":1}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	known := map[string]bool{}
	for _, k := range ClientTypes() {
		known[k] = true
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, perr := DecodeRequest(in)
		if perr != nil {
			if perr.Code == "" || perr.Message == "" {
				t.Fatalf("error without code or message: %+v", perr)
			}
			if req.Body != nil {
				t.Fatal("body returned with an error")
			}
			if len(req.ID) > MaxIDBytes {
				t.Fatal("over-long id echoed back")
			}
			return
		}
		if !known[req.Type] {
			t.Fatalf("accepted unknown type %q", req.Type)
		}
		if len(req.ID) > MaxIDBytes {
			t.Fatalf("accepted id of %d bytes", len(req.ID))
		}
		if req.Type != TypeLeave && req.Type != TypeICERestart && req.Body == nil {
			t.Fatalf("%s accepted without body", req.Type)
		}
		// Accepted bodies must satisfy the documented invariants.
		switch b := req.Body.(type) {
		case *PublishBody:
			for _, tr := range b.Tracks {
				if sourceKinds[tr.Source] != tr.Kind || tr.TrackID == "" {
					t.Fatalf("invalid track accepted: %+v", tr)
				}
			}
		case *MuteBody:
			if b.Muted == nil {
				t.Fatal("mute without muted accepted")
			}
		case *CandidateBody:
			if b.Candidate == nil {
				t.Fatal("candidate without candidate accepted")
			}
		}
	})
}
