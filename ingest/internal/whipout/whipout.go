// Package whipout publishes RTP to a WHIP endpoint (RFC 9725) as a
// client: an RTMP publish that lands on a cluster node not hosting its
// room is relayed this way to the node that does, which sees an ordinary
// WHIP publish (docs/cluster.md). It speaks WHIP like OBS does: one
// offer with every candidate (no trickle), a 201 answer, DELETE on the
// resource URL at the end.
package whipout

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Defaults for the Options left zero.
const (
	defaultHTTPTimeout   = 10 * time.Second
	defaultDeleteTimeout = 3 * time.Second
	maxAnswerBytes       = 64 << 10
	maxErrorBodyBytes    = 512
)

// ErrConnectionFailed is what writes return once the ICE/DTLS connection
// failed (or the remote closed it) after Dial.
var ErrConnectionFailed = errors.New("whipout: connection to the WHIP endpoint failed")

// ErrClosed is what writes return after Close.
var ErrClosed = errors.New("whipout: session closed")

// StatusError is a WHIP endpoint's refusal (any status but 201).
type StatusError struct {
	Code    int
	Message string // the start of the response body, one line
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("WHIP endpoint answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("WHIP endpoint answered %d: %s", e.Code, e.Message)
}

// Options configure Dial.
type Options struct {
	// Endpoint is the absolute URL of the WHIP endpoint.
	Endpoint string
	// Token is sent as "Authorization: Bearer <Token>". It is a secret
	// (a stream key): no error or log of this package contains it.
	Token string
	// NewPeerConnection builds the connection; the caller decides which
	// ICE ports and interfaces it uses. Its media engine must know the
	// codecs of Video and Audio.
	NewPeerConnection func() (*webrtc.PeerConnection, error)
	// Video and Audio are the tracks to send; nil sends none of that kind.
	Video, Audio *webrtc.RTPCodecCapability
	// TrackIDs name the tracks in the offer ("video", "audio" if empty).
	VideoTrackID, AudioTrackID string
	// StreamID is the offer's media stream id ("whipout" if empty).
	StreamID string
	// OnKeyframeRequest is called for each PLI or FIR the endpoint sends
	// for the video track. It must not block.
	OnKeyframeRequest func()
	// HTTPClient makes the POST and the DELETE; nil uses one with a
	// 10 s timeout.
	HTTPClient *http.Client
	// DeleteTimeout bounds the DELETE that Close sends (3 s if zero).
	DeleteTimeout time.Duration
	// DisconnectedGrace fails the session when the connection stays
	// disconnected this long (pion reports disconnected after 5 s
	// without an answer to its checks, and failed only 25 s later: an
	// endpoint that ended the session without a word, or went away, is
	// noticed sooner). Zero leaves it to pion.
	DisconnectedGrace time.Duration
}

// Session is one published WHIP resource.
type Session struct {
	pc       *webrtc.PeerConnection
	video    *webrtc.TrackLocalStaticRTP
	audio    *webrtc.TrackLocalStaticRTP
	resource string // absolute URL of the resource
	o        Options
	client   *http.Client

	connected chan struct{} // closed when the connection is up
	failed    chan struct{} // closed when it failed or the remote closed it
	failOnce  sync.Once
	upOnce    sync.Once

	mu        sync.Mutex
	closed    bool
	discTimer *time.Timer    // DisconnectedGrace, while disconnected
	wg        sync.WaitGroup // RTCP readers
}

// Resource returns the resource URL the endpoint created.
func (s *Session) Resource() string { return s.resource }

// Dial builds the connection, POSTs the offer and waits until the
// connection is up, all within ctx. On error nothing is left open: a
// resource already created is DELETEd.
func Dial(ctx context.Context, o Options) (_ *Session, err error) {
	if o.NewPeerConnection == nil {
		return nil, errors.New("whipout: Options.NewPeerConnection is required")
	}
	if o.Video == nil && o.Audio == nil {
		return nil, errors.New("whipout: nothing to send (no video, no audio)")
	}
	endpoint, err := url.Parse(o.Endpoint)
	if err != nil || (endpoint.Scheme != "http" && endpoint.Scheme != "https") || endpoint.Host == "" {
		return nil, fmt.Errorf("whipout: endpoint %q is not an absolute http(s) URL", o.Endpoint)
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	pc, err := o.NewPeerConnection()
	if err != nil {
		return nil, fmt.Errorf("whipout: peer connection: %w", err)
	}
	s := &Session{pc: pc, o: o, client: client, connected: make(chan struct{}), failed: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	pc.OnConnectionStateChange(s.stateChanged)
	streamID := cmp.Or(o.StreamID, "whipout")
	if o.Video != nil {
		if s.video, err = s.addTrack(*o.Video, cmp.Or(o.VideoTrackID, "video"), streamID, o.OnKeyframeRequest); err != nil {
			return nil, err
		}
	}
	if o.Audio != nil {
		if s.audio, err = s.addTrack(*o.Audio, cmp.Or(o.AudioTrackID, "audio"), streamID, nil); err != nil {
			return nil, err
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("whipout: create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("whipout: set offer: %w", err)
	}
	// No trickle: the offer goes out with every candidate.
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, fmt.Errorf("whipout: ICE gathering: %w", ctx.Err())
	}
	answer, err := s.post(ctx, endpoint, pc.LocalDescription().SDP)
	if err != nil {
		return nil, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, fmt.Errorf("whipout: apply answer: %w", err)
	}
	// Packets written before DTLS is up would be lost, the stream's first
	// key frame among them: wait for the connection.
	select {
	case <-s.connected:
		return s, nil
	case <-s.failed:
		return nil, ErrConnectionFailed
	case <-ctx.Done():
		return nil, fmt.Errorf("whipout: connection not up: %w", ctx.Err())
	}
}

func (s *Session) stateChanged(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		s.upOnce.Do(func() { close(s.connected) })
		s.mu.Lock()
		if s.discTimer != nil {
			s.discTimer.Stop()
			s.discTimer = nil
		}
		s.mu.Unlock()
	case webrtc.PeerConnectionStateDisconnected:
		if s.o.DisconnectedGrace <= 0 {
			return
		}
		s.mu.Lock()
		if s.discTimer == nil && !s.closed {
			s.discTimer = time.AfterFunc(s.o.DisconnectedGrace, func() {
				if s.pc.ConnectionState() == webrtc.PeerConnectionStateDisconnected {
					s.fail()
				}
			})
		}
		s.mu.Unlock()
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		s.fail()
	}
}

func (s *Session) fail() { s.failOnce.Do(func() { close(s.failed) }) }

// addTrack adds a send-only track and reads its RTCP: the interceptors
// need it read, and the video track's PLI/FIR go to onKeyframe.
func (s *Session) addTrack(c webrtc.RTPCodecCapability, id, streamID string, onKeyframe func()) (*webrtc.TrackLocalStaticRTP, error) {
	tr, err := webrtc.NewTrackLocalStaticRTP(c, id, streamID)
	if err != nil {
		return nil, fmt.Errorf("whipout: %s track: %w", c.MimeType, err)
	}
	t, err := s.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fmt.Errorf("whipout: add %s track: %w", c.MimeType, err)
	}
	sender := t.Sender()
	s.wg.Go(func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return // the connection closed
			}
			if onKeyframe == nil {
				continue
			}
			for _, p := range pkts {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					onKeyframe()
				}
			}
		}
	})
	return tr, nil
}

// post sends the offer and returns the answer; it records the resource URL.
func (s *Session) post(ctx context.Context, endpoint *url.URL, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(offer))
	if err != nil {
		return "", fmt.Errorf("whipout: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+s.o.Token)
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("whipout: POST %s: %w", redact(endpoint), unwrapURLError(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
		return "", &StatusError{Code: resp.StatusCode, Message: oneLine(b)}
	}
	// The resource exists from here on: record it first so that every
	// failure below DELETEs it.
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := resp.Request.URL.Parse(loc) // relative to the (final) request URL
		if err != nil {
			return "", fmt.Errorf("whipout: bad Location %q: %w", loc, err)
		}
		s.resource = u.String()
	} else {
		return "", errors.New("whipout: 201 without a Location header")
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		return "", fmt.Errorf("whipout: answer Content-Type %q is not application/sdp", resp.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return "", fmt.Errorf("whipout: read answer: %w", err)
	}
	if len(b) > maxAnswerBytes {
		return "", fmt.Errorf("whipout: answer larger than %d bytes", maxAnswerBytes)
	}
	return string(b), nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact prints a URL without user info or query (neither is expected,
// but neither belongs in a log).
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

func oneLine(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, string(b))
}

// Failed is closed when the connection failed or the remote closed it.
func (s *Session) Failed() <-chan struct{} { return s.failed }

// err is what a write returns instead of sending: nil while the session
// is up.
func (s *Session) err() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	select {
	case <-s.failed:
		return ErrConnectionFailed
	default:
		return nil
	}
}

// WriteVideo sends one video packet (its payload type and SSRC are
// rewritten to the negotiated ones). It fails with ErrConnectionFailed
// once the connection is gone and ErrClosed after Close.
func (s *Session) WriteVideo(p *rtp.Packet) error { return s.write(s.video, p) }

// WriteAudio sends one audio packet, as WriteVideo.
func (s *Session) WriteAudio(p *rtp.Packet) error { return s.write(s.audio, p) }

func (s *Session) write(t *webrtc.TrackLocalStaticRTP, p *rtp.Packet) error {
	if err := s.err(); err != nil {
		return err
	}
	if t == nil {
		return errors.New("whipout: no such track in the session")
	}
	if err := t.WriteRTP(p); err != nil {
		if errors.Is(err, io.ErrClosedPipe) {
			return ErrConnectionFailed
		}
		return fmt.Errorf("whipout: write: %w", err)
	}
	return nil
}

// Close DELETEs the resource (bounded by Options.DeleteTimeout, its
// failure ignored: the endpoint also ends a session whose connection
// closes) and closes the connection. Safe to call more than once.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.discTimer != nil {
		s.discTimer.Stop()
	}
	s.mu.Unlock()
	var delErr error
	if s.resource != "" {
		delErr = s.delete()
	}
	err := s.pc.Close()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("whipout: close: %w", err)
	}
	return delErr
}

func (s *Session) delete() error {
	timeout := s.o.DeleteTimeout
	if timeout <= 0 {
		timeout = defaultDeleteTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.resource, nil)
	if err != nil {
		return fmt.Errorf("whipout: DELETE: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.o.Token)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("whipout: DELETE: %w", unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodyBytes))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}
