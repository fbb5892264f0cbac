package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

const turnTestSecret = "turn-test-secret-turn-test-secret-0123"

// startTURN runs `parley turn` in-process on free loopback ports and
// returns the config file other subcommands can read.
func startTURN(t *testing.T, allowLoopback bool) (file string, port int) {
	t.Helper()
	port = testkit.FreeUDPPort(t)
	tcpPort := port
	if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		l.Close()
	} else {
		t.Fatalf("TCP port %d not free: %v", port, err)
	}
	allow := ""
	if allowLoopback {
		allow = "  allowed_peer_cidrs: [127.0.0.0/8]\n"
	}
	cfg := fmt.Sprintf(`log:
  level: warn
signaling:
  api_keys:
    %s: %s
turn:
  enabled: true
  realm: parley.test
  listen_udp: [127.0.0.1:%d]
  listen_tcp: [127.0.0.1:%d]
  public_ipv4: 127.0.0.1
  relay_bind_ipv4: 127.0.0.1
  shared_secrets: [%s]
%s`, testKeyID, testSecret, port, tcpPort, turnTestSecret, allow)
	file = filepath.Join(t.TempDir(), "turn.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out testkit.SyncBuffer
	testkit.RunInBackground(t, "parley turn", func(ctx context.Context) error {
		return run(ctx, []string{"turn", "--config", file}, nil, &out, &out)
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "TURN is up") {
		if time.Now().After(deadline) {
			t.Fatalf("parley turn did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return file, port
}

type iceServerJSON struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	TTL        int64    `json:"ttl"`
}

func turnCredentials(t *testing.T, file, user string) iceServerJSON {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"turn", "credentials", "--config", file, "--user", user, "--ttl", "10m"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var ice iceServerJSON
	if err := json.Unmarshal(out.Bytes(), &ice); err != nil {
		t.Fatalf("credentials are not JSON: %v\n%s", err, out.String())
	}
	return ice
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `apt-get install -y coturn` (or run ./scripts/test)", name)
	}
	return p
}

// TestTurnCredentialsWithCoturnClient relays through `parley turn` with
// coturn's own client, using the credentials `parley turn credentials`
// printed, as another app's operator would.
func TestTurnCredentialsWithCoturnClient(t *testing.T) {
	uclient, peerBin := needTool(t, "turnutils_uclient"), needTool(t, "turnutils_peer")
	file, port := startTURN(t, true)
	ice := turnCredentials(t, file, "alice")
	expiry, user, ok := strings.Cut(ice.Username, ":")
	if !ok || user != "alice" || ice.Credential == "" || ice.TTL != 600 {
		t.Fatalf("unexpected credentials %+v", ice)
	}
	if exp, _ := strconv.ParseInt(expiry, 10, 64); exp < time.Now().Add(9*time.Minute).Unix() || exp > time.Now().Add(11*time.Minute).Unix() {
		t.Fatalf("expiry %s is not about 10 minutes ahead", expiry)
	}
	if len(ice.URLs) == 0 || !strings.Contains(ice.URLs[0], "127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("urls %v do not name the server", ice.URLs)
	}

	peerPort := testkit.FreeUDPPort(t)
	peerCtx, stopPeer := context.WithCancel(context.Background())
	peer := exec.CommandContext(peerCtx, peerBin, "-L", "127.0.0.1", "-p", strconv.Itoa(peerPort))
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopPeer(); _ = peer.Wait() })
	time.Sleep(300 * time.Millisecond) // turnutils_peer cannot signal readiness

	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			args := []string{"-u", ice.Username, "-w", ice.Credential, "-e", "127.0.0.1", "-r", strconv.Itoa(peerPort),
				"-p", strconv.Itoa(port), "-m", "4", "-n", "50", "-l", "200", "-z", "5", "-c"}
			if transport == "tcp" {
				args = append(args, "-t")
			}
			args = append(args, "127.0.0.1")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, _ := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
			m := regexp.MustCompile(`Total lost packets (\d+) \(([\d.]+)%\)`).FindSubmatch(out)
			recv := regexp.MustCompile(`tot_recv_msgs=(\d+)`).FindAllSubmatch(out, -1)
			if m == nil || len(recv) == 0 {
				t.Fatalf("uclient did not finish a relay run:\n%s", tail(out))
			}
			got, _ := strconv.Atoi(string(recv[len(recv)-1][1]))
			if string(m[1]) != "0" || got < 200 {
				t.Fatalf("lost %s packets, received %d of 200:\n%s", m[1], got, tail(out))
			}
		})
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"turn", "check", "--config", file}, nil, &out, io.Discard); err != nil {
		t.Fatalf("turn check failed on a working server: %v\n%s", err, out.String())
	}
}

// TestTurnRefusesLoopbackPeersByDefault: the same relay without the
// operator's allow-list must fail, and the self-test says why.
func TestTurnRefusesLoopbackPeersByDefault(t *testing.T) {
	file, _ := startTURN(t, false)
	var out bytes.Buffer
	err := run(context.Background(), []string{"turn", "check", "--config", file}, nil, &out, io.Discard)
	if err == nil {
		t.Fatalf("turn check passed although loopback peers are refused:\n%s", out.String())
	}
	if !strings.Contains(strings.ToLower(out.String()), "allowed_peer_cidrs") {
		t.Fatalf("check report does not point at allowed_peer_cidrs: %q", out.String())
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
