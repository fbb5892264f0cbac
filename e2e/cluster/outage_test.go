package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// The outages: Redis restarted, then PostgreSQL gone and back,
// each in the middle of the chat storm. Nothing acknowledged may be lost
// or stored twice, and every client recovers by itself (its outbox
// retries what got a retryable error or no answer, its catch-up refills
// what it missed): clusterChatStorm checks all of it afterwards.
//
// Redis stays away until the storm's last message is stored, and its
// subscribers are cut again and again as it comes back, so the pushes
// of the storm's end between nodes are lost and no later message
// reveals the gaps they leave: every client must still converge, with
// nobody writing after the outage, because each node refills its
// sessions from PostgreSQL once its bus works again (docs/cluster.md,
// failure cases). Without that refill several clients stay behind.
//
// Redis is a private redis-server of this test (no persistence, so a
// restart loses every lease, room claim and subscription, as a real one
// without persistence would); the machine's shared Redis is never
// touched. PostgreSQL is reached through a TCP proxy that the test cuts:
// every connection reset and new ones refused for the outage, which is
// what the nodes see of a PostgreSQL restart, without restarting the
// machine's database under other tests.
func TestClusterChatStormOutages(t *testing.T) {
	t.Run("redis restarted", func(t *testing.T) {
		env := newClusterEnv(t)
		rds := startRedis(t)
		env.redisURL = rds.url()
		clusterChatStorm(t, env, false, func(nodes []*testkit.Parley) {
			rds.stop()
			stoppedAt := time.Now()
			// A join that needs placement meanwhile is refused with the
			// retryable "unavailable", not left hanging or placed twice.
			p := dialPeer(t, nodes[0].URL, clusterToken(t, "late", "outage-room", auth.Grants{Subscribe: true, Chat: true}))
			if ok, code, _ := p.joinResult(); ok || code != "unavailable" {
				t.Errorf("a room join with Redis down: joined %v, code %q; want the retryable unavailable", ok, code)
			}
			p.close()
			if !testkit.Poll(context.Background(), 60*time.Second, 50*time.Millisecond, func() bool {
				return storedTexts(t, env.pgURL) >= stormClients*stormPerClient
			}) {
				t.Fatalf("the storm's messages were not all stored within 60 s of Redis going away (%d)", storedTexts(t, env.pgURL))
			}
			// The last ones' publications fail rather than go out once
			// Redis is back (a node's publish gives up after about 3 s).
			time.Sleep(time.Second)
			t.Logf("Redis away for %v; the storm's %d messages are stored", time.Since(stoppedAt).Round(time.Millisecond), stormClients*stormPerClient)
			rds.start(t)
			// What the nodes queued meanwhile goes out once Redis answers
			// again, within a second, and would reveal most gaps: cut the
			// nodes' subscriptions over and over meanwhile, as a Redis
			// coming back under load may, so that those publications find
			// no subscriber either.
			if n := rds.cutSubscribers(t, 2*time.Second); n == 0 {
				t.Error("no subscription was cut after Redis came back")
			}
			// The nodes find the new Redis by themselves (leases and
			// subscriptions made again): placement works again.
			placed := testkit.Poll(context.Background(), 10*time.Second, 250*time.Millisecond, func() bool {
				p := dialPeer(t, nodes[0].URL, clusterToken(t, "late", "outage-room", auth.Grants{Subscribe: true, Chat: true}))
				defer p.close()
				ok, code, _ := p.joinResult()
				return ok || code == "wrong_node"
			})
			if !placed {
				t.Error("no room placed within 10 s of Redis coming back")
			}
		})
	})
	t.Run("postgres cut", func(t *testing.T) {
		env := newClusterEnv(t)
		px := testkit.StartTCPProxy(t, "127.0.0.1:5432")
		env.pgURL = rewriteHost(t, env.pgURL, px.Addr())
		clusterChatStorm(t, env, false, func([]*testkit.Parley) { px.Cut(t, 3*time.Second) })
	})
}

// storedTexts counts the text messages in the store at pgURL.
func storedTexts(t *testing.T, pgURL string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM chat_messages WHERE kind = 'text'").Scan(&n); err != nil {
		t.Fatalf("counting stored messages: %v", err)
	}
	return n
}

// privateRedis is a redis-server process this test owns.
type privateRedis struct {
	port int
	proc *testkit.Process
}

func startRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (./scripts/test-services installs it)")
	}
	r := &privateRedis{port: testkit.FreeTCPPort(t)}
	r.start(t)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	r.proc = testkit.StartProcess(t, context.Background(), "redis-server", "--port", fmt.Sprint(r.port),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if !testkit.Poll(context.Background(), 10*time.Second, 20*time.Millisecond, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("redis-server did not listen on %d: %s", r.port, r.proc.Output())
	}
}

// cutSubscribers closes every pub/sub connection to the server, again
// and again for d, and returns how many it closed.
func (r *privateRedis) cutSubscribers(t *testing.T, d time.Duration) int {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port)})
	defer rdb.Close()
	ctx := context.Background()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		k, err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
		if err != nil {
			t.Fatalf("CLIENT KILL TYPE pubsub: %v", err)
		}
		n += int(k)
	}
	return n
}

// stop kills the server (SIGKILL: its state is gone); start runs a new
// one on the same port.
func (r *privateRedis) stop() {
	_ = syscall.Kill(-r.proc.Pid(), syscall.SIGKILL)
	<-r.proc.Done()
}

// rewriteHost points a PostgreSQL URL at another host:port.
func rewriteHost(t *testing.T, raw, hostPort string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = hostPort
	return u.String()
}
