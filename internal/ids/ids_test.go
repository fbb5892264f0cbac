package ids

import (
	"regexp"
	"testing"
)

func TestShapes(t *testing.T) {
	idRE := regexp.MustCompile(`^PA_[a-z2-7]{16}$`)
	secretRE := regexp.MustCompile(`^[a-z2-7]{26}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := New("PA_")
		if !idRE.MatchString(id) {
			t.Fatalf("New(PA_) = %q, want PA_ and 16 base32 characters", id)
		}
		s := Secret()
		if !secretRE.MatchString(s) {
			t.Fatalf("Secret() = %q, want 26 base32 characters", s)
		}
		if seen[id] || seen[s] {
			t.Fatalf("repeated id %q / %q", id, s)
		}
		seen[id], seen[s] = true, true
	}
}
