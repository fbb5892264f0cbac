package sfu

import (
	"testing"
	"time"
)

func TestLinkQuality(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		s    linkStats
		want Quality
	}{
		{linkStats{}, QualityExcellent},
		{linkStats{loss: 0.02, jitter: 30 * ms, rtt: 250 * ms}, QualityExcellent},
		{linkStats{loss: 0.03}, QualityGood},
		{linkStats{jitter: 50 * ms}, QualityGood},
		{linkStats{rtt: 400 * ms}, QualityGood},
		{linkStats{loss: 0.10}, QualityPoor},
		{linkStats{loss: 0.01, rtt: 600 * ms}, QualityPoor},
		{linkStats{jitter: 100 * ms}, QualityPoor},
	}
	for _, tc := range cases {
		if got := tc.s.quality(); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestRTTFromReport: a receiver report naming a sender report sent
// 150 ms ago, held 30 ms by the receiver, means 120 ms of round trip.
func TestRTTFromReport(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	lsr := uint32(ntpTime(now.Add(-150*time.Millisecond)) >> 16)
	dlsr := uint32(30 * 65536 / 1000)
	got := rttFromReport(lsr, dlsr, now)
	if d := got - 120*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("rtt %v, want 120ms", got)
	}
	if got := rttFromReport(0, 0, now); got != 0 {
		t.Errorf("no sender report yet: rtt %v, want 0", got)
	}
	if got := rttFromReport(uint32(ntpTime(now.Add(time.Second))>>16), 0, now); got != 0 {
		t.Errorf("report from the future: rtt %v, want 0", got)
	}
}
