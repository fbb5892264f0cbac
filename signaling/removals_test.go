package signaling

import (
	"testing"
	"time"
)

func TestRemovals(t *testing.T) {
	r := newRemovals(time.Hour)
	at := time.Date(2026, 1, 1, 12, 0, 0, 500e6, time.UTC) // half a second past 12:00:00
	r.add("r", "ada", at)
	tests := []struct {
		name           string
		room, identity string
		issued, now    time.Time
		want           bool
	}{
		{"issued before the removal", "r", "ada", at.Add(-time.Minute), at.Add(time.Minute), true},
		{"issued in the removal's second", "r", "ada", at.Truncate(time.Second), at.Add(time.Minute), true},
		{"issued after the removal", "r", "ada", at.Truncate(time.Second).Add(time.Second), at.Add(time.Minute), false},
		{"another room", "s", "ada", at.Add(-time.Minute), at.Add(time.Minute), false},
		{"another identity", "r", "bob", at.Add(-time.Minute), at.Add(time.Minute), false},
		{"once no older token can be valid", "r", "ada", at.Add(-time.Minute), at.Add(2 * time.Hour), false},
	}
	for _, tc := range tests {
		if got := r.revoked(tc.room, tc.identity, tc.issued, tc.now); got != tc.want {
			t.Errorf("%s: revoked = %v, want %v", tc.name, got, tc.want)
		}
	}
	if len(r.at) != 0 {
		t.Fatalf("%d entries kept past their time", len(r.at))
	}
	r.limit = 3
	for i := range 5 {
		r.add("r", string(rune('a'+i)), at.Add(time.Duration(i)*time.Second))
	}
	if len(r.at) != 3 || r.revoked("r", "a", at, at) || !r.revoked("r", "e", at, at) {
		t.Fatalf("after 5 removals with room for 3: %v", r.at)
	}
}
