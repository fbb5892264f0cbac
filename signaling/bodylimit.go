package signaling

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Request bodies at the edge. net/http bounds the time to read headers
// (ReadHeaderTimeout) but not the body: a client declaring a body and
// sending it a byte at a time holds the connection and a handler (or, for
// a handler that answers without reading, net/http's own drain of the
// body before the response) for as long as it likes. A server-wide
// ReadTimeout would bound it, but also ends the request's context of a
// handler that runs longer (net/http's background read hits the same
// deadline) and stays on hijacked WebSocket connections. So the deadline
// is set per request, only on requests that carry a body, from the end of
// the headers, and cleared once the body has been read to its end.

// BodyLimiter is implemented by a Deps.Routes handler whose requests
// carry bodies larger than the default limit (WHIP's SDP offers). The
// edge then refuses a larger declared body with 413 before the handler
// runs, and cuts a longer undeclared one at the limit.
type BodyLimiter interface {
	MaxBodyBytes() int64
}

// defaultMaxBody bounds request bodies on every route that does not say
// otherwise: the admin API's and the dev token endpoint's JSON.
const defaultMaxBody = maxAdminBody

// limitBody applies the body deadline and size limit of the route mux
// picks for r. It answers 413 itself and returns false for a declared
// body over the limit.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	limit := int64(defaultMaxBody)
	if h, _ := mux.Handler(r); h != nil {
		if bl, ok := h.(BodyLimiter); ok && bl.MaxBodyBytes() > 0 {
			limit = bl.MaxBodyBytes()
		}
	}
	rc := http.NewResponseController(w)
	// Set before anything is answered: net/http drains an unread body
	// before it writes a response, and that drain must be bounded too.
	// An error means a ResponseWriter without deadlines (a test
	// recorder); there is no connection to protect then.
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	if r.ContentLength > limit {
		s.edge.refuse("body_too_large")
		w.Header().Set("Connection", "close")
		writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body larger than %d bytes", limit))
		return false
	}
	r.Body = &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), rc: rc, edge: s.edge}
	return true
}

// deadlineBody clears the body deadline once the body has been read to
// its end (so a handler that then works longer keeps its context) and
// counts bodies cut by the deadline.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	edge *edge
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	case err != nil:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.once.Do(func() { b.edge.refuse("body_timeout") })
		}
	}
	return n, err
}
