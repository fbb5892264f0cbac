package sfu_test

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/transport/v5/vnet"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
)

// TestConnectionQuality: the room's peers are told every participant's
// level; 20% loss on a publisher's uplink makes it poor within seconds,
// the subscriber who only receives stays better off than that, and the
// publisher is excellent again once the loss ends.
func TestConnectionQuality(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, sfu.DefaultConfig())
		ada := env.newClient("room", "PA_ada", sfu.JoinOptions{CanPublish: true})
		bob := env.newClient("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
		ada.AddTrack("audio", "mic")
		ada.NegotiatePublisher(false)
		testkit.Eventually(t, 10*time.Second, "bob receiving", func() bool { return bob.TotalReceived() > 50 })

		level := func(c interface{ QualityLevels() map[string]sfu.Quality }, id string) sfu.Quality {
			q, ok := c.QualityLevels()[id]
			if !ok {
				return -1
			}
			return q
		}
		testkit.Eventually(t, 5*time.Second, "both excellent, told to both", func() bool {
			return level(bob, "PA_ada") == sfu.QualityExcellent && level(bob, "PA_bob") == sfu.QualityExcellent &&
				level(ada, "PA_ada") == sfu.QualityExcellent
		})

		var lossy atomic.Bool
		rng := rand.New(rand.NewPCG(1, 2))
		env.vnet.Router.AddChunkFilter(func(ch vnet.Chunk) bool {
			b := ch.UserData()
			rtp := len(b) >= 12 && b[0]>>6 == 2 && (b[1] < 192 || b[1] > 223)
			if lossy.Load() && rtp && strings.HasPrefix(ch.SourceAddr().String(), ada.IP+":") {
				return rng.IntN(100) >= 20
			}
			return true
		})
		lossy.Store(true)
		testkit.Eventually(t, 10*time.Second, "ada poor with 20% uplink loss", func() bool {
			return level(bob, "PA_ada") == sfu.QualityPoor && level(ada, "PA_ada") == sfu.QualityPoor
		})
		lossy.Store(false)
		testkit.Eventually(t, 15*time.Second, "ada excellent again", func() bool {
			return level(bob, "PA_ada") == sfu.QualityExcellent
		})
	})
}
