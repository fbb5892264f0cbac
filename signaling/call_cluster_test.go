package signaling

import (
	"slices"
	"testing"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// A group call rings the members connected to other nodes, and their
// answers reach the caller: Ada on node a calls her group; Bob and
// Carol, connected only to node b, ring there; Bob's accept gives both
// him and Ada the call room, Carol's decline is reported to Ada with
// her name.
func TestClusterGroupCallRingsOtherNodes(t *testing.T) {
	nodes := startRedisCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	ada := a.joinMessaging("ada")
	g := ada.group("bob", "carol")
	// What the group's creation does once chat_group calls it (see
	// noteGroup).
	a.srv.cpres.noteGroup(chat.Conversation{ID: g.ID, Kind: chat.KindGroup}, []string{"ada", "bob", "carol"})
	bob := b.joinMessaging("bob")
	carol := b.joinMessaging("carol")
	// Their snapshots show Ada, connected only to node a.
	bob.waitFor("ada in bob's snapshot", presenceIs("ada", proto.PresenceOnline))
	carol.waitFor("ada in carol's snapshot", presenceIs("ada", proto.PresenceOnline))

	ada.send(proto.TypeCall, "c1", proto.CallBody{ConversationID: g.ID})
	m := ada.waitRe("c1")
	var ringing proto.CallRingingBody
	m.decode(t, &ringing)
	if m.Type != proto.TypeCallRinging || !slices.Equal(ringing.Ringing, []string{"bob", "carol"}) {
		t.Fatalf("ada's group call answered %s %s; want bob and carol ringing", m.Type, m.Data)
	}
	for _, callee := range []*cc{bob, carol} {
		var ring proto.RingBody
		callee.waitType(proto.TypeRing).decode(t, &ring)
		if ring.CallID != ringing.CallID || ring.Caller.Identity != "ada" || ring.Kind != "group" {
			t.Fatalf("ring %+v, call %s", ring, ringing.CallID)
		}
	}

	bob.send(proto.TypeCallAccept, "a1", proto.CallRefBody{CallID: ringing.CallID})
	var mine, theirs proto.CallAcceptedBody
	if m := bob.waitRe("a1"); m.Type != proto.TypeCallAccepted {
		t.Fatalf("bob's accept answered %s %s", m.Type, m.Data)
	} else {
		m.decode(t, &mine)
	}
	ada.waitType(proto.TypeCallAccepted).decode(t, &theirs)
	if mine.Room == "" || mine.Room != theirs.Room || theirs.Peer.Identity != "bob" || mine.Token == "" {
		t.Fatalf("accepted: bob %+v, ada %+v", mine, theirs)
	}

	carol.send(proto.TypeCallDecline, "d1", proto.CallRefBody{CallID: ringing.CallID})
	var ended proto.CallEndedBody
	if m := carol.waitRe("d1"); m.Type != proto.TypeCallEnded {
		t.Fatalf("carol's decline answered %s %s", m.Type, m.Data)
	} else if m.decode(t, &ended); ended.Reason != proto.CallEndDeclined {
		t.Fatalf("carol's decline answered %+v", ended)
	}
	ada.waitType(proto.TypeCallEnded).decode(t, &ended)
	if ended.CallID != ringing.CallID || ended.Reason != proto.CallEndDeclined || ended.Identity != "carol" {
		t.Fatalf("ada heard %+v, want carol declined", ended)
	}
}

// A group call reads its callees' merged status in one round trip, not
// one per callee.
func TestClusterGroupCallReadsPresenceOnce(t *testing.T) {
	cfg, st := openChatStore(t)
	svc, err := chat.New(cfg, chat.Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	pres := &memPresence{st: map[string]string{}}
	env := &chatEnv{testEnv: startServerDeps(t, nil, func(d *Deps) {
		d.Chat, d.Relay, d.Presence = svc, newMemBus(t).node(), pres
	}), svc: svc}
	for _, id := range []string{"ada", "bob", "carol", "dave"} {
		env.srv.rememberIdentity(id)
	}
	ada := env.joinMessaging("ada")
	g := ada.group("bob", "carol", "dave")
	for _, who := range []string{"bob", "carol", "dave"} {
		env.joinMessaging(who).waitFor("ada in "+who+"'s snapshot", presenceIs("ada", proto.PresenceOnline))
	}
	pres.mu.Lock()
	pres.reads = 0
	pres.mu.Unlock()
	ada.send(proto.TypeCall, "c1", proto.CallBody{ConversationID: g.ID})
	var ringing proto.CallRingingBody
	ada.waitRe("c1").decode(t, &ringing)
	if len(ringing.Ringing) != 3 {
		t.Fatalf("call_ringing %+v, want bob, carol and dave", ringing)
	}
	pres.mu.Lock()
	defer pres.mu.Unlock()
	if pres.reads != 1 {
		t.Fatalf("placing a call to 3 read the merged view %d times, want once", pres.reads)
	}
}
