package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// In cluster mode a room lives on one node (docs/cluster.md). A WHIP POST
// that lands on another node is passed on to the hosting node, and the
// encoder gets that node's answer: its SDP carries the hosting node's
// candidates, so the media goes straight there, and Location is an
// absolute URL on it, so DELETE does too. Not a 307 redirect (RFC 9725
// allows one): libcurl, which OBS uses, drops the Authorization header
// when a redirect changes the host, and OBS would get 401.

// whipForwardedBy marks a WHIP POST passed on by another node (its node
// id), as the admin API marks its own (signaling/admin_cluster.go). Such
// a request is never passed on again: a hosting node that finds the room
// elsewhere by then answers 503, and the encoder's retry starts over.
const whipForwardedBy = "X-Parley-Forwarded-By"

const (
	// whipPlaceTimeout bounds the placement lookup (a Redis round trip,
	// and a check that the chosen node answers).
	whipPlaceTimeout = 5 * time.Second
	// whipForwardTimeout bounds the hosting node's answer: its key lookup
	// and ICE gathering, which it bounds to 10 s itself.
	whipForwardTimeout = 15 * time.Second
	// maxForwardedAnswer bounds what is read of the hosting node's answer
	// (an SDP answer is a few KiB).
	maxForwardedAnswer = 1 << 20
	// whipRetryAfter is the Retry-After of the cluster's transient refusals.
	whipRetryAfter = "2"
)

// whipForwardClient passes WHIP POSTs on; it never follows a redirect
// (the Authorization header would go to whatever host it names).
//
//nolint:gochecknoglobals // stateless apart from its connection pool
var whipForwardClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// whipElsewhere asks the cluster where room lives; when it is another
// node it passes the POST (whose offer is body) on and reports true
// (w is answered). Without a placer every room is here.
func (s *Service) whipElsewhere(ctx context.Context, w http.ResponseWriter, r *http.Request, room string, client netip.Addr, body []byte) bool {
	if s.place == nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, whipPlaceTimeout)
	host, err := s.place.PlaceRoom(pctx, room)
	cancel()
	if err != nil {
		s.m.refused.WithLabelValues("whip", "placement").Inc()
		s.log.Warn("WHIP: the cluster could not place the stream's room", "room", room, "err", err)
		w.Header().Set("Retry-After", whipRetryAfter)
		http.Error(w, "the cluster cannot place this stream's room right now (Redis, or the node that hosts the room, is unreachable); try again", http.StatusServiceUnavailable)
		return true
	}
	if host == "" {
		return false
	}
	if by := r.Header.Get(whipForwardedBy); by != "" {
		// The node that passed it on saw the room here; it has moved since.
		s.m.refused.WithLabelValues("whip", "placement_moved").Inc()
		s.log.Info("WHIP: a forwarded publish's room is on another node now", "room", room, "from", by, "host", host)
		w.Header().Set("Retry-After", whipRetryAfter)
		http.Error(w, "the room moved to another node meanwhile; try again", http.StatusServiceUnavailable)
		return true
	}
	s.forwardWHIP(w, r, room, host, client, body)
	return true
}

// forwardWHIP POSTs the offer to the same path on host and relays the
// answer.
func (s *Service) forwardWHIP(w http.ResponseWriter, r *http.Request, room, host string, client netip.Addr, body []byte) {
	log := s.log.With("room", room, "host", host)
	fail := func(reason, msg string, err error) {
		s.m.refused.WithLabelValues("whip", reason).Inc()
		log.Warn("WHIP: "+msg, "err", err)
		http.Error(w, msg+"; try again", http.StatusBadGateway)
	}
	target, err := url.Parse(host)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		fail("forward_failed", "the room's node advertises a bad URL", err)
		return
	}
	target.Path = strings.TrimSuffix(target.Path, "/") + r.URL.Path
	target.RawPath, target.RawQuery, target.Fragment = "", "", ""
	ctx, cancel := context.WithTimeout(r.Context(), whipForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		fail("forward_failed", "cannot build the request to the room's node", err)
		return
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(whipForwardedBy, s.nodeName())
	if client.IsValid() {
		// Believed by the hosting node only if this node is among its
		// signaling.trusted_proxies: then it rate-limits the encoder's
		// address, not this node's.
		req.Header.Set("X-Forwarded-For", client.Unmap().String())
		req.Header.Set("Forwarded", forwardedFor(client))
	}
	resp, err := whipForwardClient.Do(req)
	if err != nil {
		fail("forward_failed", "the room's node did not answer", err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardedAnswer+1))
	if err == nil && len(answer) > maxForwardedAnswer {
		err = errors.New("answer larger than 1 MiB")
	}
	if err != nil {
		fail("forward_failed", "the room's node's answer did not arrive", err)
		return
	}
	var location string
	if loc := resp.Header.Get("Location"); loc != "" {
		// Absolute, on the hosting node: the encoder's DELETE goes there.
		abs, err := req.URL.Parse(loc)
		if err != nil {
			fail("forward_failed", "the room's node answered a bad Location", err)
			return
		}
		location = abs.String()
	}
	h := w.Header()
	for _, name := range []string{"Content-Type", "Etag", "Link", "Retry-After", "Www-Authenticate", "Allow", "Accept-Post"} {
		if v := resp.Header.Values(name); len(v) > 0 {
			h[name] = v
		}
	}
	if location != "" {
		h.Set("Location", location)
	}
	log.Info("WHIP publish passed to the room's node", "status", resp.StatusCode)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// nodeName is this node's id for whipForwardedBy: the placer's, when it
// has one (cmd's does).
func (s *Service) nodeName() string {
	if n, ok := s.place.(interface{ NodeID() string }); ok {
		if id := n.NodeID(); id != "" {
			return id
		}
	}
	return "parley"
}

// forwardedFor is an RFC 7239 Forwarded value naming addr.
func forwardedFor(addr netip.Addr) string {
	if addr.Is6() && !addr.Is4In6() {
		return `for="[` + addr.String() + `]"`
	}
	return "for=" + addr.Unmap().String()
}
