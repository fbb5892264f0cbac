package chat

import (
	"errors"
	"strings"
	"testing"
)

func TestParseClientMsgID(t *testing.T) {
	cases := []struct {
		in, want string
		err      error
	}{
		{"0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3", "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3", nil},
		{"0A1B2C3D-4E5F-4A6B-8C7D-8E9FA0B1C2D3", "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3", nil},
		{"", "", ErrInvalid},
		{"not-a-uuid", "", ErrInvalid},
		{"00000000-0000-0000-0000-000000000000", "", ErrInvalid},
		{"{0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3}", "", ErrInvalid},
		{"urn:uuid:0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3", "", ErrInvalid},
		{"0a1b2c3d4e5f4a6b8c7d8e9fa0b1c2d3", "", ErrInvalid},
		{"0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2dz", "", ErrInvalid},
	}
	for _, tc := range cases {
		got, err := ParseClientMsgID(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseClientMsgID(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestValidateText(t *testing.T) {
	cases := []struct {
		name, in string
		max      int
		err      error
	}{
		{"plain", "hello", 10, nil},
		{"multiline and tab", "a\n\tb\r\n", 10, nil},
		{"emoji at limit", "héllo 👋", len("héllo 👋"), nil},
		{"one over limit", "héllo 👋!", len("héllo 👋"), ErrTooLarge},
		{"empty", "", 10, ErrInvalid},
		{"blank", " \t\n ", 10, ErrInvalid},
		{"bad utf8", "ok\xc3", 10, ErrInvalid},
		{"nul", "a\x00b", 10, ErrInvalid},
		{"escape", "\x1b[31mred", 20, ErrInvalid},
		{"c1 control", "a\u0085b", 10, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateText(tc.in, tc.max); !errors.Is(err, tc.err) {
				t.Fatalf("ValidateText(%q, %d) = %v, want %v", tc.in, tc.max, err, tc.err)
			}
		})
	}
}

func TestValidateIdentityAndNames(t *testing.T) {
	cases := []struct {
		name string
		err  error
		fn   func() error
	}{
		{"identity ok", nil, func() error { return ValidateIdentity(Identity{ID: "u1", Name: "Ann Lee"}) }},
		{"identity no name", nil, func() error { return ValidateIdentity(Identity{ID: "u1"}) }},
		{"identity empty", ErrInvalid, func() error { return ValidateIdentity(Identity{}) }},
		{"identity long", ErrTooLarge, func() error { return ValidateIdentity(Identity{ID: strings.Repeat("x", MaxIDBytes+1)}) }},
		{"identity spaces", ErrInvalid, func() error { return ValidateIdentity(Identity{ID: " u1"}) }},
		{"name control", ErrInvalid, func() error { return ValidateIdentity(Identity{ID: "u1", Name: "a\nb"}) }},
		{"room ok", nil, func() error { return ValidateRoomName("daily standup") }},
		{"room empty", ErrInvalid, func() error { return ValidateRoomName("") }},
		{"room bad utf8", ErrInvalid, func() error { return ValidateRoomName("r\xff") }},
		{"title empty ok", nil, func() error { return ValidateTitle("") }},
		{"title long", ErrTooLarge, func() error { return ValidateTitle(strings.Repeat("t", MaxNameBytes+1)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
}

const testCID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"

// TestValidateEventKinds covers every event kind's rules.
func TestValidateEventKinds(t *testing.T) {
	base := func(k EventKind) Message {
		return Message{ConversationID: "c1", ClientMsgID: testCID, Sender: Identity{ID: "u1"}, Kind: k}
	}
	with := func(k EventKind, f func(*Message)) Message { m := base(k); f(&m); return m }
	cases := []struct {
		name string
		m    Message
		err  error
	}{
		{"text ok", with(EventText, func(m *Message) { m.Text = "hi" }), nil},
		{"text empty", base(EventText), ErrInvalid},
		{"text too large", with(EventText, func(m *Message) { m.Text = strings.Repeat("a", 33) }), ErrTooLarge},
		{"text with target", with(EventText, func(m *Message) { m.Text, m.TargetSeq = "hi", 1 }), ErrInvalid},
		{"edit ok", with(EventEdit, func(m *Message) { m.Text, m.TargetSeq = "fixed", 3 }), nil},
		{"edit no target", with(EventEdit, func(m *Message) { m.Text = "fixed" }), ErrInvalid},
		{"edit negative target", with(EventEdit, func(m *Message) { m.Text, m.TargetSeq = "x", -1 }), ErrInvalid},
		{"edit empty", with(EventEdit, func(m *Message) { m.TargetSeq = 3 }), ErrInvalid},
		{"delete ok", with(EventDelete, func(m *Message) { m.TargetSeq = 3 }), nil},
		{"delete no target", base(EventDelete), ErrInvalid},
		{"delete with text", with(EventDelete, func(m *Message) { m.TargetSeq, m.Text = 3, "x" }), ErrInvalid},
		{"missed ok", base(EventCallMissed), nil},
		{"missed with note", with(EventCallMissed, func(m *Message) { m.Text = "room standup" }), nil},
		{"declined bad note", with(EventCallDeclined, func(m *Message) { m.Text = "\xff" }), ErrInvalid},
		{"declined with target", with(EventCallDeclined, func(m *Message) { m.TargetSeq = 2 }), ErrInvalid},
		{"system ok without sender", with(EventSystem, func(m *Message) { m.Sender, m.Text = Identity{}, "bob joined" }), nil},
		{"system empty", base(EventSystem), ErrInvalid},
		{"text without sender", with(EventText, func(m *Message) { m.Sender, m.Text = Identity{}, "hi" }), ErrInvalid},
		{"unknown kind", with("poke", func(m *Message) { m.Text = "hi" }), ErrInvalid},
		{"bad client id", with(EventText, func(m *Message) { m.Text, m.ClientMsgID = "hi", "1" }), ErrInvalid},
		{"no conversation", with(EventText, func(m *Message) { m.Text, m.ConversationID = "hi", "" }), ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateEvent(tc.m, 32); !errors.Is(err, tc.err) {
				t.Fatalf("ValidateEvent(%+v) = %v, want %v", tc.m, err, tc.err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cases := []struct {
		key string
		mod func(*Config)
	}{
		{"chat.data_dir", func(c *Config) { c.DataDir = "" }},
		{"chat.max_message_bytes", func(c *Config) { c.MaxMessageBytes = 0 }},
		{"chat.history_page_max", func(c *Config) { c.HistoryPageMax = 0 }},
		{"chat.catch_up_page_max", func(c *Config) { c.CatchUpPageMax = -1 }},
		{"chat.max_group_members", func(c *Config) { c.MaxGroupMembers = 1 }},
		{"chat.busy_timeout", func(c *Config) { c.BusyTimeout = -1 }},
		{"chat.group_commit_max", func(c *Config) { c.GroupCommitMax = 0 }},
		{"chat.read_conns", func(c *Config) { c.ReadConns = 0 }},
		{"chat.store", func(c *Config) { c.Store = "mysql" }},
		{"chat.postgres_url", func(c *Config) { c.Store = StorePostgres }},
		{"chat.postgres_url", func(c *Config) { c.Store, c.PostgresURL = StorePostgres, "mysql://u:pw@h/db" }},
		{"chat.postgres_max_conns", func(c *Config) { c.PostgresMaxConns = 0 }},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: Validate() = %v, want an error naming the key", tc.key, err)
		}
	}
	c := DefaultConfig()
	c.DataDir = ""
	c.DBPath = "/var/lib/parley/chat.db"
	if err := c.Validate(); err != nil || c.DatabasePath() != "/var/lib/parley/chat.db" {
		t.Fatalf("db_path alone: %v %q", err, c.DatabasePath())
	}
	c = DefaultConfig()
	c.Store, c.DataDir, c.PostgresURL = StorePostgres, "", "postgres://parley:hunter2@db.example:5432/parley?sslmode=verify-full"
	if err := c.Validate(); err != nil {
		t.Fatalf("postgres store without data_dir: %v", err)
	}
	// A refused URL is never quoted back: it may hold a password.
	c.PostgresURL = "postgres://parley:hunter2@/parley"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("URL without host: %v, want an error without the password", err)
	}
	if got := DefaultConfig().DatabasePath(); got != "data/chat.db" {
		t.Fatalf("default path %q", got)
	}
}

func TestDirectKeySymmetric(t *testing.T) {
	if DirectKey("a", "b") != DirectKey("b", "a") || DirectKey("a", "b") == DirectKey("a", "c") {
		t.Fatal("DirectKey must be order-free and distinct per pair")
	}
	// The separator cannot appear in ids, so pairs never alias.
	if DirectKey("a", "b\x00c") == DirectKey("a\x00b", "c") && ValidateIdentity(Identity{ID: "b\x00c"}) == nil {
		t.Fatal("ids with NUL must be refused")
	}
}
