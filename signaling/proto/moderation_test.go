package proto

import (
	"strings"
	"testing"
)

func TestDecodeModerationRequests(t *testing.T) {
	long := strings.Repeat("L", MaxLobbyIDBytes+1)
	tests := []struct {
		name     string
		in       string
		wantCode string // "" means valid
		check    func(t *testing.T, body Body)
	}{
		{name: "admit", in: `{"type":"lobby_admit","id":"1","data":{"lobbyId":"LB_abc-1"}}`},
		{name: "admit no id", in: `{"type":"lobby_admit","data":{}}`, wantCode: CodeBadRequest},
		{name: "admit id too long", in: `{"type":"lobby_admit","data":{"lobbyId":"` + long + `"}}`, wantCode: CodeBadRequest},
		{name: "deny odd id", in: `{"type":"lobby_deny","data":{"lobbyId":"LB/../x"}}`, wantCode: CodeBadRequest},
		{name: "deny", in: `{"type":"lobby_deny","data":{"lobbyId":"LB_x"}}`},
		{name: "admit all", in: `{"type":"lobby_admit_all"}`},
		{name: "settings", in: `{"type":"room_settings","data":{"locked":true,"screenShare":"moderators","maxParticipants":5}}`,
			check: func(t *testing.T, b Body) {
				s := b.(*RoomSettingsBody)
				if !*s.Locked || *s.ScreenShare != WhoModerators || *s.MaxParticipants != 5 || s.Lobby != nil {
					t.Fatalf("body %+v", s)
				}
			}},
		{name: "settings false is a change", in: `{"type":"room_settings","data":{"lobby":false}}`},
		{name: "settings empty", in: `{"type":"room_settings","data":{}}`, wantCode: CodeBadRequest},
		{name: "settings bad who", in: `{"type":"room_settings","data":{"chat":"admins"}}`, wantCode: CodeBadRequest},
		{name: "settings negative cap", in: `{"type":"room_settings","data":{"maxParticipants":-1}}`, wantCode: CodeBadRequest},
		{name: "settings huge cap", in: `{"type":"room_settings","data":{"maxParticipants":10001}}`, wantCode: CodeBadRequest},
		{name: "settings wrong type", in: `{"type":"room_settings","data":{"locked":"yes"}}`, wantCode: CodeBadRequest},
		{name: "mute", in: `{"type":"mod_mute","data":{"identity":"bob","source":"microphone"}}`},
		{name: "mute screen", in: `{"type":"mod_mute","data":{"identity":"bob","source":"screen"}}`},
		{name: "mute bad source", in: `{"type":"mod_mute","data":{"identity":"bob","source":"screen_audio"}}`, wantCode: CodeBadRequest},
		{name: "mute no identity", in: `{"type":"mod_mute","data":{"source":"camera"}}`, wantCode: CodeBadRequest},
		{name: "mute all", in: `{"type":"mod_mute_all"}`},
		{name: "allow unmute", in: `{"type":"mod_allow_unmute","data":{"identity":"bob"}}`},
		{name: "allow unmute control char", in: `{"type":"mod_allow_unmute","data":{"identity":"b\u0000b"}}`, wantCode: CodeBadRequest},
		{name: "remove", in: `{"type":"mod_remove","data":{"identity":"bob","ban":true}}`,
			check: func(t *testing.T, b Body) {
				if r := b.(*ModRemoveBody); !r.Ban || r.Identity != "bob" {
					t.Fatalf("body %+v", r)
				}
			}},
		{name: "remove empty", in: `{"type":"mod_remove","data":{"identity":""}}`, wantCode: CodeBadRequest},
		{name: "role", in: `{"type":"mod_role","data":{"identity":"bob","moderator":false}}`},
		{name: "role without moderator", in: `{"type":"mod_role","data":{"identity":"bob"}}`, wantCode: CodeBadRequest},
		{name: "end", in: `{"type":"end_meeting"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, perr := DecodeRequest([]byte(tc.in))
			if tc.wantCode != "" {
				if perr == nil || perr.Code != tc.wantCode || req.Body != nil {
					t.Fatalf("got %v (body %v), want code %s", perr, req.Body, tc.wantCode)
				}
				return
			}
			if perr != nil {
				t.Fatalf("unexpected error %v", perr)
			}
			if tc.check != nil {
				tc.check(t, req.Body)
			}
		})
	}
}

// FuzzDecodeModerationRequest feeds arbitrary input to the decoder,
// seeded with every moderation message, and checks what an accepted body
// guarantees to the handlers.
func FuzzDecodeModerationRequest(f *testing.F) {
	seeds := []string{
		`{"type":"lobby_admit","data":{"lobbyId":"LB_abc"}}`,
		`{"type":"lobby_deny","data":{"lobbyId":"LB_abc"}}`,
		`{"type":"lobby_admit_all"}`,
		`{"type":"room_settings","data":{"lobby":true,"locked":false,"screenShare":"moderators","chat":"everyone","maxParticipants":3,"moderatorsUnmuteOnly":true}}`,
		`{"type":"mod_mute","data":{"identity":"bob","source":"camera"}}`,
		`{"type":"mod_mute_all"}`,
		`{"type":"mod_allow_unmute","data":{"identity":"bob"}}`,
		`{"type":"mod_remove","data":{"identity":"bob","ban":true}}`,
		`{"type":"mod_role","data":{"identity":"bob","moderator":true}}`,
		`{"type":"end_meeting"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, perr := DecodeRequest(in)
		if perr != nil {
			if perr.Code == "" || perr.Message == "" || req.Body != nil {
				t.Fatalf("bad error result: %+v body %v", perr, req.Body)
			}
			return
		}
		ident := func(id string) {
			if check("x").identity("identity", id).err != nil {
				t.Fatalf("accepted identity %q", id)
			}
		}
		switch b := req.Body.(type) {
		case *LobbyRefBody:
			if (&LobbyRefBody{LobbyID: b.LobbyID}).Validate("x") != nil {
				t.Fatalf("accepted lobby id %q", b.LobbyID)
			}
		case *RoomSettingsBody:
			if *b == (RoomSettingsBody{}) {
				t.Fatal("accepted empty settings")
			}
			for _, w := range []*string{b.ScreenShare, b.Chat} {
				if w != nil && *w != WhoEveryone && *w != WhoModerators {
					t.Fatalf("accepted who %q", *w)
				}
			}
			if b.MaxParticipants != nil && (*b.MaxParticipants < 0 || *b.MaxParticipants > maxRoomCap) {
				t.Fatalf("accepted cap %d", *b.MaxParticipants)
			}
		case *ModMuteBody:
			ident(b.Identity)
			if b.Source != ModSourceMicrophone && b.Source != ModSourceCamera && b.Source != ModSourceScreen {
				t.Fatalf("accepted source %q", b.Source)
			}
		case *ModTargetBody:
			ident(b.Identity)
		case *ModRemoveBody:
			ident(b.Identity)
		case *ModRoleBody:
			ident(b.Identity)
			if b.Moderator == nil {
				t.Fatal("accepted role without moderator")
			}
		}
	})
}
