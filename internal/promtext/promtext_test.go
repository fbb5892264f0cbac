package promtext

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
parley_sfu_packets_forwarded_total{kind="video"} 1000
parley_sfu_packets_forwarded_total{kind="audio"} 500 1700000000000
parley_x{reason="a b}c"} 3
process_resident_memory_bytes 4.2e+07

up +Inf
`
	s, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sum("parley_sfu_packets_forwarded_total"); got != 1500 {
		t.Fatalf("forwarded sum %v, want 1500", got)
	}
	if got := s.Sum("process_cpu_seconds_total"); got != 12.5 {
		t.Fatalf("cpu %v", got)
	}
	if v, ok := s.Value(`parley_x{reason="a b}c"}`); !ok || v != 3 {
		t.Fatalf("series with a space and a brace in a label: %v %v (%v)", v, ok, s)
	}
	if v, ok := s.Value("process_resident_memory_bytes"); !ok || v != 4.2e7 {
		t.Fatalf("rss %v %v", v, ok)
	}
	if s.Sum("process_cpu") != 0 {
		t.Fatal("Sum matched a prefix of another metric's name")
	}
	for _, bad := range []string{"process_cpu_seconds_total abc\n", "x{a=\"1\" 2\n", "lonely\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}
