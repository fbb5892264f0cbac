package cluster

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// frontDoor stands in for the load balancer an operator puts in front of
// the nodes: it hands each request (WebSocket upgrades included) to the
// next node in turn, skipping nodes that do not accept connections, and
// keeps the Host the browser asked for, as a reverse proxy does.
type frontDoor struct {
	URL      string
	backends []*url.URL
	next     atomic.Uint32
}

func startFrontDoor(t *testing.T, nodes ...*testkit.Parley) *frontDoor {
	t.Helper()
	fd := &frontDoor{}
	for _, n := range nodes {
		u, err := url.Parse(n.URL)
		if err != nil {
			t.Fatal(err)
		}
		fd.backends = append(fd.backends, u)
	}
	srv := httptest.NewServer(http.HandlerFunc(fd.serve))
	t.Cleanup(srv.Close)
	fd.URL = srv.URL
	return fd
}

func (fd *frontDoor) serve(w http.ResponseWriter, r *http.Request) {
	start := int(fd.next.Add(1))
	for i := range fd.backends {
		u := fd.backends[(start+i)%len(fd.backends)]
		c, err := net.DialTimeout("tcp", u.Host, 200*time.Millisecond)
		if err != nil {
			continue // a dead node: the health check of a real balancer
		}
		c.Close()
		proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		}}
		proxy.ServeHTTP(w, r)
		return
	}
	http.Error(w, "no node answers", http.StatusBadGateway)
}
