package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling/proto"
)

// Unit tests of the call state machine (call.go) and its table
// (call_table.go), without sockets or a chat store.

// fakeOut is a session that records what it is sent.
type fakeOut struct {
	name string
	got  []string
}

func (o *fakeOut) enqueue(msg []byte)                  { o.got = append(o.got, summarize(msg)) }
func (o *fakeOut) sendError(re string, e *proto.Error) { o.got = append(o.got, "error "+e.Code) }
func (o *fakeOut) sendBye(reason string)               { o.got = append(o.got, "bye "+reason) }

func (o *fakeOut) take() []string {
	out := o.got
	o.got = nil
	return out
}

// summarize shows a call message as "type[ re=..] field=value ...".
func summarize(msg []byte) string {
	var env proto.Envelope
	_ = json.Unmarshal(msg, &env)
	var fields map[string]any
	_ = json.Unmarshal(env.Data, &fields)
	out := env.Type
	if env.Re != "" {
		out += " re=" + env.Re
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != "callId" && k != "conversationId" && k != "caller" && k != "timeoutMs" && k != "kind" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := fields[k]
		if p, ok := v.(map[string]any); ok {
			v = p["identity"]
		}
		out += fmt.Sprintf(" %s=%v", k, v)
	}
	return out
}

// describe shows one effect for comparison.
func describe(e effect) string {
	switch {
	case e.record != nil:
		return "record " + e.record.callee.ID + " " + string(e.record.outcome)
	case e.outcome != "":
		return "count " + e.outcome
	case e.to != nil:
		return "to " + e.to.(*fakeOut).name + ": " + summarize(e.msg)
	default:
		skip := ""
		if e.skip != nil {
			skip = " but " + e.skip.(*fakeOut).name
		}
		return "push " + e.identity + skip + ": " + summarize(e.msg)
	}
}

func describeAll(effects []effect) []string {
	out := make([]string, 0, len(effects))
	for _, e := range effects {
		out = append(out, describe(e))
	}
	return out
}

func testEnvFor() callEnv {
	rooms := 0
	return callEnv{
		mint: func(identity, _, room string) (string, error) {
			if identity == "broken" {
				return "", errors.New("no key")
			}
			return "tok-" + identity + "-" + room, nil
		},
		newRoom: func() string { rooms++; return fmt.Sprint("call-", rooms) },
	}
}

func newTestCall(from outbound, kind chat.ConversationKind, callees ...string) *call {
	cl := &call{id: "c1", caller: chat.Identity{ID: "ada", Name: "Ada"}, from: from, convID: "conv", kind: kind,
		callees: map[string]calleeState{}, names: map[string]string{}, timeout: 30 * time.Second}
	for _, id := range callees {
		cl.names[id] = strings.ToUpper(id)
	}
	return cl
}

func online(ids ...string) func(string) string {
	return func(id string) string {
		if slices.Contains(ids, id) {
			return proto.PresenceOnline
		}
		if strings.HasPrefix(id, "busy") {
			return proto.PresenceInCall
		}
		return proto.PresenceOffline
	}
}

// step runs one transition and checks its effects, error and whether the
// call is over afterwards.
func step(t *testing.T, cl *call, name string, effects []effect, perr *proto.Error, wantCode string, wantOver bool, want ...string) {
	t.Helper()
	code := ""
	if perr != nil {
		code = perr.Code
	}
	if code != wantCode {
		t.Fatalf("%s: error %v, want code %q", name, perr, wantCode)
	}
	if got := describeAll(effects); !slices.Equal(got, want) {
		t.Fatalf("%s: effects\n  %s\nwant\n  %s", name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if cl.over() != wantOver {
		t.Fatalf("%s: over = %v, want %v", name, cl.over(), wantOver)
	}
}

func TestCallTransitions(t *testing.T) {
	phone := &fakeOut{name: "ada-phone"}
	laptop := &fakeOut{name: "ada-laptop"}
	bobPhone := &fakeOut{name: "bob-phone"}
	cyTab := &fakeOut{name: "cy-tab"}
	id := func(id string) chat.Identity { return chat.Identity{ID: id, Name: strings.ToUpper(id)} }

	t.Run("nobody rings", func(t *testing.T) {
		cl := newTestCall(phone, chat.KindGroup, "busy1", "gone")
		step(t, cl, "ring", cl.ring("r1", online()), nil, "", true,
			"to ada-phone: call_ringing re=r1 busy=[busy1] offline=[gone] ringing=[]",
			"to ada-phone: call_ended reason=busy",
			"record busy1 call_missed",
			"record gone call_missed")
		cl = newTestCall(phone, chat.KindDirect, "gone")
		step(t, cl, "ring offline", cl.ring("r2", online()), nil, "", true,
			"to ada-phone: call_ringing re=r2 busy=[] offline=[gone] ringing=[]",
			"to ada-phone: call_ended reason=offline",
			"record gone call_missed")
	})

	t.Run("direct: accept", func(t *testing.T) {
		env := testEnvFor()
		cl := newTestCall(phone, chat.KindDirect, "bob")
		step(t, cl, "ring", cl.ring("r1", online("bob")), nil, "", false,
			"to ada-phone: call_ringing re=r1 busy=[] offline=[] ringing=[bob]",
			"push bob: ring")
		effects, perr := cl.accept(id("cy"), cyTab, "x", env)
		step(t, cl, "a stranger accepts", effects, perr, proto.CodeNotFound, false)
		effects, perr = cl.accept(id("bob"), bobPhone, "a1", env)
		step(t, cl, "bob accepts", effects, perr, "", true,
			"to ada-phone: call_accepted peer=bob room=call-1 token=tok-ada-call-1",
			"count accepted",
			"to bob-phone: call_accepted re=a1 peer=ada room=call-1 token=tok-bob-call-1",
			"push bob but bob-phone: call_ended reason=answered_elsewhere")
		effects, perr = cl.decline("bob", bobPhone, "d1")
		step(t, cl, "declining after accepting", effects, perr, proto.CodeNotFound, true)
	})

	t.Run("a token that cannot be minted changes nothing", func(t *testing.T) {
		env := testEnvFor()
		cl := newTestCall(phone, chat.KindDirect, "broken")
		cl.ring("r1", online("broken"))
		effects, perr := cl.accept(id("broken"), bobPhone, "a1", env)
		step(t, cl, "accept", effects, perr, proto.CodeInternal, false)
		if cl.room != "" || cl.callees["broken"] != calleeRinging {
			t.Fatalf("failed accept left room %q, state %v", cl.room, cl.callees["broken"])
		}
	})

	t.Run("direct: decline", func(t *testing.T) {
		cl := newTestCall(phone, chat.KindDirect, "bob")
		cl.ring("r1", online("bob"))
		effects, perr := cl.decline("bob", bobPhone, "d1")
		step(t, cl, "bob declines", effects, perr, "", true,
			"to bob-phone: call_ended re=d1 reason=declined",
			"push bob but bob-phone: call_ended reason=declined_elsewhere",
			"record bob call_declined",
			"to ada-phone: call_ended reason=declined")
	})

	t.Run("group: decline, accept, time out", func(t *testing.T) {
		env := testEnvFor()
		cl := newTestCall(phone, chat.KindGroup, "bob", "cy", "dee")
		cl.ring("r1", online("bob", "cy", "dee"))
		effects, perr := cl.decline("dee", &fakeOut{name: "dee"}, "d1")
		step(t, cl, "dee declines", effects, perr, "", false,
			"to dee: call_ended re=d1 reason=declined",
			"push dee but dee: call_ended reason=declined_elsewhere",
			"record dee call_declined",
			"to ada-phone: call_ended identity=dee reason=declined")
		effects, perr = cl.accept(id("cy"), cyTab, "a1", env)
		step(t, cl, "cy accepts", effects, perr, "", false,
			"to ada-phone: call_accepted peer=cy room=call-1 token=tok-ada-call-1",
			"count accepted",
			"to cy-tab: call_accepted re=a1 peer=ada room=call-1 token=tok-cy-call-1",
			"push cy but cy-tab: call_ended reason=answered_elsewhere")
		step(t, cl, "nobody else answers", cl.expire(), nil, "", true,
			"push bob: call_ended reason=no_answer",
			"record bob call_missed")
	})

	t.Run("cancel", func(t *testing.T) {
		cl := newTestCall(phone, chat.KindGroup, "bob", "cy")
		cl.ring("r1", online("bob", "cy"))
		effects, perr := cl.cancel("bob", bobPhone, "x")
		step(t, cl, "a callee cancels", effects, perr, proto.CodeNotFound, false)
		effects, perr = cl.cancel("ada", laptop, "c1")
		step(t, cl, "the caller cancels from another device", effects, perr, "", true,
			"push bob: call_ended reason=cancelled",
			"record bob call_missed",
			"push cy: call_ended reason=cancelled",
			"record cy call_missed",
			"to ada-laptop: call_ended re=c1 reason=cancelled",
			"to ada-phone: call_ended reason=cancelled")
	})

	t.Run("caller gone, time out", func(t *testing.T) {
		cl := newTestCall(phone, chat.KindDirect, "bob")
		cl.ring("r1", online("bob"))
		step(t, cl, "the caller's session ends", cl.callerGone(), nil, "", true,
			"push bob: call_ended reason=cancelled",
			"record bob call_missed")
		cl = newTestCall(phone, chat.KindDirect, "bob")
		cl.ring("r1", online("bob"))
		step(t, cl, "nobody answers", cl.expire(), nil, "", true,
			"push bob: call_ended reason=no_answer",
			"record bob call_missed",
			"to ada-phone: call_ended reason=no_answer")
	})
}

// fakePresence is the hub as the call table sees it.
type fakePresence struct {
	online map[string]bool
	pushes []string
}

func (p *fakePresence) status(id string) string {
	if p.online[id] {
		return proto.PresenceOnline
	}
	return proto.PresenceOffline
}

func (p *fakePresence) displayName(id string) string { return strings.ToUpper(id) }

func (p *fakePresence) pushCall(_, id string, msg []byte, _ outbound) int {
	p.pushes = append(p.pushes, id+": "+summarize(msg))
	return 1
}

// The table times calls out on the clock it runs on: exactly at the ring
// timeout, not before; it counts ringing calls per caller, and shutdown
// stops the timers it has.
func TestCallTableOnFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := newMetrics(nil, rooms.New(rooms.Config{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		presence := &fakePresence{online: map[string]bool{"bob": true, "cy": true}}
		var stored []string
		const ring = 30 * time.Second
		table := newCallTable(callTableConfig{maxPending: 2, ringTimeout: ring}, testEnvFor(), presence,
			func(rs []callRecord) {
				for _, r := range rs {
					stored = append(stored, r.callee.ID+" "+string(r.outcome))
				}
			}, m)
		ada := &fakeOut{name: "ada"}
		caller := chat.Identity{ID: "ada", Name: "Ada"}

		if perr := table.place(caller, ada, "r1", "conv-b", chat.KindDirect, []string{"bob"}); perr != nil {
			t.Fatal(perr)
		}
		time.Sleep(ring / 2)
		if perr := table.place(caller, ada, "r2", "conv-c", chat.KindDirect, []string{"cy"}); perr != nil {
			t.Fatal(perr)
		}
		if perr := table.place(caller, ada, "r3", "conv-d", chat.KindDirect, []string{"dee"}); perr == nil || perr.Code != proto.CodeCallLimit {
			t.Fatalf("a third ringing call: %v, want call_limit", perr)
		}
		if got := ada.take(); len(got) != 2 {
			t.Fatalf("caller got %q, want two call_ringing", got)
		}

		time.Sleep(ring/2 - time.Millisecond)
		synctest.Wait()
		if len(stored) != 0 || table.pending() != 2 {
			t.Fatalf("before the timeout: stored %q, %d pending", stored, table.pending())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := ada.take(); !slices.Equal(got, []string{"call_ended reason=no_answer"}) {
			t.Fatalf("caller got %q at the first call's timeout", got)
		}
		if !slices.Equal(stored, []string{"bob call_missed"}) || table.pending() != 1 {
			t.Fatalf("at the timeout: stored %q, %d pending", stored, table.pending())
		}

		// Shutdown stops the remaining timer: nothing more happens.
		table.shutdown()
		table.wait()
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := ada.take(); len(got) != 0 || len(stored) != 1 {
			t.Fatalf("after shutdown: caller got %q, stored %q", got, stored)
		}
		wantPushes := []string{
			"bob: ring", "cy: ring",
			"bob: call_ended reason=no_answer",
		}
		if !slices.Equal(presence.pushes, wantPushes) {
			t.Fatalf("pushes %q, want %q", presence.pushes, wantPushes)
		}
	})
}
