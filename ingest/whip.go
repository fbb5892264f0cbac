package ingest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/internal/peraddr"
	"github.com/parleyhq/parley/rtmp"
)

// WHIP (RFC 9725) for OBS 30+: POST <path> with the stream key as Bearer
// token and an SDP offer creates a stream and answers 201 with the SDP
// answer (all candidates included: OBS does not trickle) and a Location
// <path>/<resource id>; DELETE on that URL ends the stream. Media arrives
// on the SFU's own ICE ports (sfu.NewIngressPeerConnection) and is
// forwarded as it comes; viewers' key-frame requests go back to the
// encoder as RTCP PLI.

// WHIPHandler serves the WHIP endpoint. Mount it on both cfg.WHIP.Path
// and cfg.WHIP.Path + "/" (the resource URLs live under it).
func (s *Service) WHIPHandler() http.Handler { return whipHandler{s} }

// whipHandler is the WHIP endpoint as an http.Handler that also tells
// the HTTP edge in front of it (signaling.BodyLimiter) how large its
// request bodies may be, so an offer over ingest.whip.max_offer_bytes is
// refused before the handler runs and a smaller one is not cut at the
// edge's default.
type whipHandler struct{ s *Service }

func (h whipHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.s.serveWHIP(w, r) }

// MaxBodyBytes is the largest WHIP request body: the SDP offer.
func (h whipHandler) MaxBodyBytes() int64 { return int64(h.s.cfg.WHIP.MaxOfferBytes) }

// whipSession is one WHIP resource.
type whipSession struct {
	id      string
	keyHash string
	st      *stream
	pc      *webrtc.PeerConnection
	pli     chan uint32 // SSRCs that need a key frame
	done    chan struct{}
	up      atomic.Bool
	endOnce sync.Once

	mu    sync.Mutex
	ended bool
	timer *time.Timer // connect timeout
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (s *Service) serveWHIP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	defer func() {
		code := w.code
		if code == 0 {
			code = http.StatusOK
		}
		s.m.whip.WithLabelValues(methodLabel(r.Method), strconv.Itoa(code)).Inc()
	}()
	if !s.cfg.WHIP.Enabled {
		http.NotFound(w, r)
		return
	}
	s.cors(w, r)
	rest, ok := strings.CutPrefix(r.URL.Path, s.cfg.WHIP.Path)
	switch {
	case !ok:
		http.NotFound(w, r)
	case rest == "" || rest == "/":
		switch r.Method {
		case http.MethodOptions:
			w.Header().Set("Accept-Post", "application/sdp")
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPost:
			s.whipCreate(w, r)
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	default:
		id, ok := parseResourceID(strings.TrimPrefix(rest, "/"))
		if !ok || !strings.HasPrefix(rest, "/") {
			http.NotFound(w, r)
			return
		}
		switch r.Method {
		case http.MethodOptions:
			w.WriteHeader(http.StatusNoContent)
		case http.MethodDelete:
			s.whipDelete(w, r, id)
		default:
			// PATCH (trickle ICE, ICE restart) is not supported: the
			// answer already carries every candidate.
			w.Header().Set("Allow", "DELETE, OPTIONS")
			http.Error(w, "method not allowed (no trickle ICE; the answer carries all candidates)", http.StatusMethodNotAllowed)
		}
	}
}

func methodLabel(m string) string {
	switch m {
	case http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodPatch, http.MethodGet:
		return m
	}
	return "other"
}

func (s *Service) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.WHIP.CORSOrigins) == 0 {
		return
	}
	h := w.Header()
	switch {
	case slices.Contains(s.cfg.WHIP.CORSOrigins, "*"):
		h.Set("Access-Control-Allow-Origin", "*")
	case slices.Contains(s.cfg.WHIP.CORSOrigins, origin):
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	default:
		return
	}
	h.Set("Access-Control-Allow-Methods", "POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Expose-Headers", "Location")
	h.Set("Access-Control-Max-Age", "600")
}

func (s *Service) whipCreate(w http.ResponseWriter, r *http.Request) {
	// The client address as the HTTP edge resolved it (a trusted reverse
	// proxy's forwarded address), else the TCP peer.
	addr := peraddr.FromRequest(r)
	ip := addr.String()
	if ok, retry := s.limiter.allow(addr); !ok {
		s.m.refused.WithLabelValues("whip", "rate_limited").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, math.Ceil(retry.Seconds())))))
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		http.Error(w, "Content-Type must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	key, ok := parseBearer(r.Header.Get("Authorization"))
	if !ok {
		s.m.refused.WithLabelValues("whip", "no_token").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
		http.Error(w, "missing Bearer token: put the stream key in OBS's Bearer Token field", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.WHIP.MaxOfferBytes)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("SDP offer larger than %d bytes", s.cfg.WHIP.MaxOfferBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	offer, err := checkOffer(body)
	if err != nil {
		http.Error(w, "bad offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	b, err := s.keys.Lookup(ctx, key)
	switch {
	case errors.Is(err, rtmp.ErrUnknownKey):
		s.m.refused.WithLabelValues("whip", "unknown_key").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
		http.Error(w, "unknown stream key", http.StatusUnauthorized)
		return
	case errors.Is(err, rtmp.ErrRevoked):
		s.m.refused.WithLabelValues("whip", "revoked_key").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
		http.Error(w, "stream key revoked", http.StatusUnauthorized)
		return
	case err != nil:
		s.m.refused.WithLabelValues("whip", "key_store").Inc()
		s.log.Error("WHIP key lookup failed", "err", err)
		http.Error(w, "key check failed", http.StatusInternalServerError)
		return
	}
	// In a cluster the stream goes to the node that hosts its room. The
	// limits above (rate, offer size, key) are this node's.
	if s.whipElsewhere(ctx, w, r, b.Room, addr, body) {
		return
	}
	st, err := s.begin(b, "whip", ip)
	switch {
	case errors.Is(err, ErrStreamLive):
		http.Error(w, "this stream is already live", http.StatusConflict)
		return
	case errors.Is(err, ErrTooManyStreams), errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "10")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, "the room refused the stream", http.StatusForbidden)
		return
	}
	ws, answer, code, err := s.startWHIP(ctx, st, offer, hashKey(key))
	if err != nil {
		st.close()
		st.log.Info("WHIP offer refused", "err", err)
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Location", s.cfg.WHIP.Path+"/"+ws.id)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// startWHIP answers the offer on a new ingress PeerConnection. On error
// it returns the HTTP status to send; the caller closes the stream.
func (s *Service) startWHIP(ctx context.Context, st *stream, offer, keyHash string) (*whipSession, string, int, error) {
	pc, err := s.media.NewIngressPeerConnection()
	if err != nil {
		return nil, "", http.StatusServiceUnavailable, fmt.Errorf("media server unavailable: %w", err)
	}
	ws := &whipSession{id: ids.Secret(), keyHash: keyHash, st: st, pc: pc,
		pli: make(chan uint32, 4), done: make(chan struct{})}
	s.life.Lock()
	st.onClose = append(st.onClose, func() { s.whipEnded(ws) })
	s.life.Unlock()
	s.whipMu.Lock()
	s.whipRes[ws.id] = ws
	s.whipMu.Unlock()
	s.wg.Go(ws.pliLoop)

	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { s.whipTrack(ws, tr, recv) })
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		st.log.Debug("WHIP connection state", "state", state.String())
		switch state {
		case webrtc.PeerConnectionStateConnected:
			ws.up.Store(true)
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			ws.mu.Lock()
			ended := ws.ended // we closed it ourselves: nothing to do
			ws.mu.Unlock()
			if !ended {
				// Not on pion's goroutine: closing waits for pion.
				s.wg.Go(st.close)
			}
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, "", http.StatusBadRequest, fmt.Errorf("bad offer: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", http.StatusBadRequest, fmt.Errorf("cannot answer the offer: %w", err)
	}
	if !answerCarriesMedia(answer.SDP) {
		return nil, "", http.StatusNotAcceptable, errors.New("offer has neither H.264 (packetization-mode=1, baseline profile) video nor Opus audio")
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("set answer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, "", http.StatusServiceUnavailable, errors.New("ICE gathering timed out")
	}
	ws.mu.Lock()
	if !ws.ended { // the connection may already have failed
		s.wg.Add(1)
		ws.timer = time.AfterFunc(s.cfg.WHIP.ConnectTimeout, func() {
			defer s.wg.Done()
			if !ws.up.Load() {
				st.log.Info("WHIP connection did not come up; ending the stream", "timeout", s.cfg.WHIP.ConnectTimeout)
				st.close()
			}
		})
	}
	ws.mu.Unlock()
	st.log.Info("WHIP stream answered", "resource", ws.id)
	return ws, pc.LocalDescription().SDP, 0, nil
}

// whipTrack publishes one incoming track and forwards its packets.
func (s *Service) whipTrack(ws *whipSession, tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	codec := tr.Codec()
	ssrc := uint32(tr.SSRC())
	var onKeyframe func()
	if !isAudio(codec.MimeType) {
		onKeyframe = func() { ws.requestKeyframe(ssrc) }
	}
	// Counted before the stream can be seen closed, so Run (which closes
	// every stream before waiting) always waits for these loops.
	s.wg.Add(2)
	lt, err := ws.st.addTrack(codec.RTPCodecCapability, tr.ID(), onKeyframe)
	if err != nil {
		s.wg.Add(-2)
		ws.st.log.Warn("WHIP track not published", "codec", codec.MimeType, "err", err)
		return
	}
	// Both loops end when the PeerConnection closes.
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			_ = lt.WriteRTP(buf[:n]) // ErrClosed after the stream ended: keep draining
		}
	}()
	go func() {
		defer s.wg.Done()
		// Reading RTCP lets the interceptors see the sender reports.
		for {
			if _, _, err := recv.ReadRTCP(); err != nil {
				return
			}
		}
	}()
}

func (ws *whipSession) requestKeyframe(ssrc uint32) {
	select {
	case ws.pli <- ssrc:
	default: // one is already queued
	}
}

// pliLoop sends PLIs off the SFU's goroutine (OnKeyframeRequest must not
// block).
func (ws *whipSession) pliLoop() {
	for {
		select {
		case <-ws.done:
			return
		case ssrc := <-ws.pli:
			if err := ws.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
				ws.st.log.Debug("WHIP PLI failed", "err", err)
				continue
			}
			ws.st.keyframes.Add(1)
			ws.st.s.m.keyframes.WithLabelValues("whip", "forwarded").Inc()
		}
	}
}

// whipEnded runs once the stream's tracks are unpublished.
func (s *Service) whipEnded(ws *whipSession) {
	ws.endOnce.Do(func() {
		s.whipMu.Lock()
		delete(s.whipRes, ws.id)
		s.whipMu.Unlock()
		ws.mu.Lock()
		ws.ended = true
		if ws.timer != nil && ws.timer.Stop() {
			s.wg.Done()
		}
		ws.mu.Unlock()
		close(ws.done)
		if err := ws.pc.Close(); err != nil {
			ws.st.log.Debug("WHIP close", "err", err)
		}
	})
}

func (s *Service) whipDelete(w http.ResponseWriter, r *http.Request, id string) {
	s.whipMu.Lock()
	ws := s.whipRes[id]
	s.whipMu.Unlock()
	// A stream that has ended (revoked, or its publisher gone) is no
	// session any more even while its close hooks, which drop it from
	// whipRes, still run after the participant left.
	if ws == nil || ws.st.ended() {
		http.Error(w, "no such WHIP session", http.StatusNotFound)
		return
	}
	// The resource URL is a 128-bit capability; a Bearer token, if sent,
	// must still be the stream's key.
	if h := r.Header.Get("Authorization"); h != "" {
		key, ok := parseBearer(h)
		if !ok || subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(ws.keyHash)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
			http.Error(w, "wrong stream key for this session", http.StatusUnauthorized)
			return
		}
	}
	ws.st.close()
	w.WriteHeader(http.StatusOK)
}
