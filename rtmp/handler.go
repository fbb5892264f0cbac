package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	gortmp "github.com/livekit/go-rtmp"
	"github.com/livekit/go-rtmp/message"
)

// statusChunkStreamID is the chunk stream our own onStatus messages use,
// apart from the library's command stream so the two never interleave.
const statusChunkStreamID = 5

// connHandler handles one RTMP connection (go-rtmp calls it from the
// connection's read goroutine, one call at a time).
type connHandler struct {
	gortmp.DefaultHandler
	srv    *Server
	nc     *deadlineConn
	conn   *gortmp.Conn
	log    *slog.Logger
	pub    *publish
	key    string
	buf    bytes.Buffer
	closed bool
	// stopped is set when a live publish was refused (B-frames, codec):
	// the session has ended and further media is discarded until the
	// publisher, having read our onStatus, hangs up (or linger expires).
	stopped bool
}

// refusalLinger is how long a refused publisher may keep sending after our
// onStatus error before we close. Closing at once would reset the TCP
// connection while the publisher is still writing, and the reset discards
// the unread onStatus, so ffmpeg/OBS would only report "broken pipe".
const refusalLinger = 2 * time.Second

// guard turns a panic in our handler code into an error that closes only
// this connection (go-rtmp recovers panics on its read loop too, but not in
// OnServe/OnClose, which run outside it).
func (h *connHandler) guard(err *error) {
	if r := recover(); r != nil {
		h.srv.m.panicked()
		h.log.Error("panic on RTMP connection; closing it", "panic", r, "stack", string(debug.Stack()))
		if err != nil {
			*err = fmt.Errorf("panic: %v", r)
		}
	}
}

func (h *connHandler) OnServe(conn *gortmp.Conn) {
	defer h.guard(nil)
	h.conn = conn
}

func (h *connHandler) OnConnect(_ uint32, cmd *message.NetConnectionConnect) (err error) {
	defer h.guard(&err)
	app := strings.Trim(cmd.Command.App, "/")
	if i := strings.IndexByte(app, '?'); i >= 0 {
		app = app[:i]
	}
	if app != h.srv.cfg.App {
		h.srv.m.refuse(reasonApp)
		h.log.Info("RTMP connect refused: wrong app", "app", app, "want", h.srv.cfg.App)
		return fmt.Errorf("app %q is not %q", app, h.srv.cfg.App)
	}
	return nil
}

// OnPublish checks the stream key and starts the Session before the
// library answers "publish started"; an error refuses the publish.
func (h *connHandler) OnPublish(sc *gortmp.StreamContext, _ uint32, cmd *message.NetStreamPublish) (err error) {
	defer h.guard(&err)
	if h.pub != nil {
		return h.refuse(sc.StreamID, &refusal{Reason: reasonKeyInUse, Code: "NetStream.Publish.BadName", Desc: "parley: already publishing", Err: errors.New("second publish on one connection")})
	}
	key := cmd.PublishingName
	if i := strings.IndexByte(key, '?'); i >= 0 {
		key = key[:i]
	}
	ctx, cancel := context.WithTimeout(h.srv.ctx, 5*time.Second)
	defer cancel()
	var b Binding
	if key == "" {
		err = ErrUnknownKey
	} else {
		b, err = h.srv.keys.Lookup(ctx, key)
	}
	switch {
	case errors.Is(err, ErrUnknownKey):
		return h.refuse(sc.StreamID, &refusal{Reason: reasonUnknownKey, Code: "NetStream.Publish.BadName", Desc: "parley: unknown stream key", Err: err})
	case errors.Is(err, ErrRevoked):
		return h.refuse(sc.StreamID, revokedKeyRefusal(err))
	case err != nil:
		return h.refuse(sc.StreamID, &refusal{Reason: reasonKeyStore, Code: "NetStream.Publish.Failed", Desc: "parley: key check failed", Err: err})
	}
	if !h.srv.claimKey(key) {
		return h.refuse(sc.StreamID, &refusal{Reason: reasonKeyInUse, Code: "NetStream.Publish.BadName", Desc: "parley: stream key already live", Err: errors.New("stream key already live")})
	}
	// Free the key on every way out that did not start a publish, panics
	// included (this runs before guard recovers).
	defer func() {
		if h.pub == nil {
			h.srv.releaseKey(key)
		}
	}()
	info := StreamInfo{Binding: b, StreamID: "RT_" + uuid.NewString(), RemoteAddr: h.nc.RemoteAddr().String(), Key: key}
	log := h.log.With("room", b.Room, "participant", b.Identity, "stream", info.StreamID)
	session, err := h.srv.sink.Start(ctx, info)
	if err != nil {
		return h.refuse(sc.StreamID, &refusal{Reason: reasonSink, Code: "NetStream.Publish.Failed", Desc: "parley: room refused the stream", Err: err})
	}
	h.key = key
	h.log = log
	h.pub = newPublish(h.srv.ctx, info, session, h.srv.pubOpts, log, h.srv.m)
	h.pub.onVideoPkts = h.srv.onVideoPkts
	h.pub.rtmpStream = sc.StreamID
	h.nc.startPublishing()
	h.srv.m.streamStarted()
	log.Info("RTMP publish started")
	return nil
}

// refuse tells the publisher why (our onStatus goes out before the
// library's generic "Publish failed.", and ffmpeg/OBS act on the first),
// counts the reason and returns the error that closes the connection.
func (h *connHandler) refuse(streamID uint32, r *refusal) error {
	h.srv.m.refuse(r.Reason)
	h.log.Info("RTMP publish refused", "reason", r.Reason, "err", r.Err)
	if err := h.sendStatus(streamID, r.Code, r.Desc); err != nil {
		h.log.Debug("send onStatus failed", "err", err)
	}
	return r
}

func (h *connHandler) sendStatus(streamID uint32, code, desc string) error {
	if h.conn == nil {
		return errors.New("no connection")
	}
	msg, err := onStatusMessage(code, desc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.srv.cfg.WriteTimeout)
	defer cancel()
	return h.conn.Write(ctx, statusChunkStreamID, 0, &gortmp.ChunkMessage{StreamID: streamID, Message: msg})
}

// onStatusMessage builds an onStatus error command. Refusals sent from
// OnPublish must encode to at most 128 bytes (the server's chunk size) so
// ours is complete before the library's generic "Publish failed." starts;
// TestOnStatusFitsOneChunk keeps those descriptions short enough.
func onStatusMessage(code, desc string) (*message.CommandMessage, error) {
	body := new(bytes.Buffer)
	enc := message.NewAMFEncoder(body, message.EncodingTypeAMF0)
	if err := message.EncodeBodyAnyValues(enc, &message.NetStreamOnStatus{InfoObject: message.NetStreamOnStatusInfoObject{
		Level: message.NetStreamOnStatusLevelError, Code: message.NetStreamOnStatusCode(code), Description: desc,
	}}); err != nil {
		return nil, fmt.Errorf("encode onStatus: %w", err)
	}
	return &message.CommandMessage{CommandName: "onStatus", Encoding: message.EncodingTypeAMF0, Body: body}, nil
}

// readPayload copies a message body into the handler's buffer, refusing
// messages over max_message_size.
func (h *connHandler) readPayload(r io.Reader) ([]byte, error) {
	h.buf.Reset()
	limit := int64(h.srv.cfg.MaxMessageSize)
	n, err := h.buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read media message: %w", err)
	}
	if n > limit {
		h.srv.m.refuse(reasonTooLarge)
		return nil, fmt.Errorf("media message exceeds rtmp.max_message_size (%d bytes)", limit)
	}
	return h.buf.Bytes(), nil
}

func (h *connHandler) OnVideo(ts uint32, payload io.Reader) (err error) {
	defer h.guard(&err)
	if h.pub == nil || h.stopped {
		return nil
	}
	b, err := h.readPayload(payload)
	if err != nil {
		return err
	}
	if err := h.pub.video(ts, b); err != nil {
		var r *refusal
		if errors.As(err, &r) {
			h.endRefused(r)
			return nil
		}
		h.srv.m.refuse(reasonMalformed)
		h.log.Info("closing RTMP publish: bad video", "err", err)
		return err
	}
	return nil
}

// endRefused tells the publisher why its live publish ends, ends it and
// closes the connection after a moment (so the status reaches OBS).
func (h *connHandler) endRefused(r *refusal) {
	_ = h.refuse(h.pub.streamID(), r)
	h.endPublish()
	h.stopped = true
	h.nc.closeBy(time.Now().Add(refusalLinger))
}

func (h *connHandler) OnAudio(ts uint32, payload io.Reader) (err error) {
	defer h.guard(&err)
	if h.pub == nil || h.stopped {
		return nil
	}
	b, err := h.readPayload(payload)
	if err != nil {
		return err
	}
	var r *refusal
	if errors.As(h.pub.endRefusal(), &r) {
		h.endRefused(r)
		return nil
	}
	h.pub.audioTag(ts, b)
	return nil
}

func (h *connHandler) OnClose() {
	defer h.guard(nil)
	if h.closed {
		return
	}
	h.closed = true
	h.endPublish()
}

// endPublish ends the Session (and its transcoder) and frees the key.
func (h *connHandler) endPublish() {
	if h.pub == nil || h.stopped {
		return
	}
	if err := h.pub.close(); err != nil {
		h.log.Warn("closing session", "err", err)
	}
	h.srv.releaseKey(h.key)
	h.srv.m.streamEnded()
	h.log.Info("RTMP publish ended")
}
