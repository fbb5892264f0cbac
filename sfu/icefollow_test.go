package sfu

import (
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

func hostCandidate(t *testing.T, addr string, port int) *ice.CandidateHost {
	t.Helper()
	c, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: addr, Port: port, Component: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// check is a binding request as a browser sends it, with USE-CANDIDATE
// when nominate, and with libwebrtc's nomination attribute when
// renomination > 0.
func check(t *testing.T, nominate bool, renomination uint32) *stun.Message {
	t.Helper()
	setters := []stun.Setter{stun.BindingRequest, stun.TransactionID}
	if nominate {
		setters = append(setters, ice.UseCandidate())
	}
	if renomination > 0 {
		setters = append(setters, ice.NominationSetter{Value: renomination, AttrType: ice.DefaultNominationAttribute})
	}
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pionSelected is what the ICE transport reports when pion selects p.
func pionSelected(p *ice.CandidatePair) *webrtc.ICECandidatePair {
	side := func(c ice.Candidate) *webrtc.ICECandidate {
		return &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolUDP, Address: c.Address(), Port: uint16(c.Port())}
	}
	return webrtc.NewICECandidatePair(side(p.Local), side(p.Remote))
}

func TestNominationFollower(t *testing.T) {
	local := hostCandidate(t, "127.0.0.1", 20000)
	first := &ice.CandidatePair{Local: local, Remote: hostCandidate(t, "127.0.0.1", 40000)}
	later := &ice.CandidatePair{Local: local, Remote: hostCandidate(t, "192.0.2.2", 40001)}
	backup := &ice.CandidatePair{Local: local, Remote: hostCandidate(t, "192.0.2.3", 40002)}

	type step struct {
		pair     *ice.CandidatePair
		nominate bool
		renom    uint32
		selected *ice.CandidatePair // pion reports this selection first, if set
		want     bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a remote that nominates once is left alone", []step{
			{pair: first, nominate: true},
			{pair: first, selected: first},
			{pair: backup},
			{pair: first},
		}},
		{"back to the first nomination at its next check (Firefox)", []step{
			{pair: first, nominate: true},
			{pair: first, selected: first},
			{pair: later, nominate: true},
			{pair: later, selected: later},
			{pair: first, want: true},
			{pair: first},                  // already asked for, before pion confirms
			{pair: later, selected: first}, // checks on the later pair go on
			{pair: first},
			{pair: backup},
		}},
		{"not before pion selected anything", []step{
			{pair: first, nominate: true},
			{pair: later, nominate: true},
			{pair: first},
		}},
		{"renomination is pion's to handle", []step{
			{pair: first, nominate: true, renom: 1},
			{pair: first, selected: first},
			{pair: later, nominate: true, renom: 2},
			{pair: later, selected: later},
			{pair: first},
		}},
		{"renomination seen later stops the follower", []step{
			{pair: first, nominate: true},
			{pair: first, selected: first},
			{pair: later, nominate: true, renom: 2},
			{pair: later, selected: later},
			{pair: first},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newNominationFollower()
			for i, s := range tc.steps {
				if s.selected != nil {
					f.selectedChanged(pionSelected(s.selected))
				}
				got := f.handle(check(t, s.nominate, s.renom), s.pair.Local, s.pair.Remote, s.pair)
				if got != s.want {
					t.Fatalf("step %d (%s, nominate=%v): switch=%v, want %v", i, s.pair.Remote.Address(), s.nominate, got, s.want)
				}
			}
		})
	}
}
