package signaling

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The admin API across a cluster (docs/cluster.md): any node answers for
// every room. A request about one room (its participants, removing one,
// muting a track, its settings, recording) is handed to the node that
// hosts the room, through that node's own admin API with the caller's
// credentials (the nodes share their API keys), so authorisation is
// decided where the room is, exactly as on one node. Listing rooms asks
// every live node. Nodes reach each other at their advertised URLs,
// which they publish in Redis; there is no other node-to-node protocol.

// ClusterPeers is what the admin API needs of the cluster.
type ClusterPeers interface {
	// NodeID is this node's id.
	NodeID() string
	// RoomHost returns the URL of the node that hosts room when that is
	// another node; "" when it is this node or the room is hosted nowhere.
	RoomHost(ctx context.Context, room string) (string, error)
	// Peers lists the other live nodes.
	Peers(ctx context.Context) ([]ClusterPeer, error)
}

// ClusterPeer is another live node.
type ClusterPeer struct {
	ID, URL string
}

// forwardedHeader marks an admin request one node hands to another; such
// a request is answered locally, never handed on again (no loops). A
// client that sets it only gets the local answer.
const forwardedHeader = "X-Parley-Forwarded-By"

// peerTimeout bounds one node's answer to another.
const peerTimeout = 3 * time.Second

// maxPeerBody bounds what is read of another node's room list.
const maxPeerBody = 4 << 20

func forwarded(r *http.Request) bool { return r.Header.Get(forwardedHeader) != "" }

func (s *Server) nodeID() string {
	if s.peers == nil {
		return ""
	}
	return s.peers.NodeID()
}

// forwardToHost hands a room's admin request to the node hosting the
// room and reports whether it did (and so answered w).
func (s *Server) forwardToHost(w http.ResponseWriter, r *http.Request) bool {
	room := r.PathValue("room")
	if s.peers == nil || room == "" || forwarded(r) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), placeTimeout)
	host, err := s.peers.RoomHost(ctx, room)
	cancel()
	if err != nil {
		s.log.Warn("admin: room host lookup failed", "room", room, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "the cluster cannot say where this room is right now; try again")
		return true
	}
	if host == "" {
		return false
	}
	target, err := url.Parse(host)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		s.log.Error("admin: the room's node advertises a bad URL", "room", room, "url", host)
		writeJSONError(w, http.StatusBadGateway, "unavailable", "the room's node cannot be reached")
		return true
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path, pr.Out.URL.RawPath = r.URL.Path, r.URL.RawPath
			pr.Out.Header.Set(forwardedHeader, s.nodeID())
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			s.log.Warn("admin: the room's node did not answer", "room", room, "node", target.Host, "err", err)
			writeJSONError(w, http.StatusBadGateway, "unavailable", "the room's node did not answer; try again")
		},
	}
	proxy.ServeHTTP(w, r)
	return true
}

// peerRooms asks every other live node for its rooms, with the caller's
// credentials; nodes that do not answer in time are named in
// unreachable.
func (s *Server) peerRooms(r *http.Request) (rooms []adminRoom, unreachable []string) {
	ctx, cancel := context.WithTimeout(r.Context(), peerTimeout)
	defer cancel()
	peers, err := s.peers.Peers(ctx)
	if err != nil {
		s.log.Warn("admin: listing the cluster's nodes failed", "err", err)
		return nil, []string{"*"}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	unreachable = []string{}
	for _, p := range peers {
		wg.Go(func() {
			got, err := s.askPeerRooms(ctx, r, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.Warn("admin: a node did not list its rooms", "node", p.ID, "err", err)
				unreachable = append(unreachable, p.ID)
				return
			}
			rooms = append(rooms, got...)
		})
	}
	wg.Wait()
	slices.Sort(unreachable)
	return rooms, unreachable
}

func (s *Server) askPeerRooms(ctx context.Context, r *http.Request, p ClusterPeer) ([]adminRoom, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, err
	}
	u = u.JoinPath("/api/admin/rooms")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set(forwardedHeader, s.nodeID())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &peerStatusError{status: resp.Status}
	}
	var body struct {
		Rooms []adminRoom `json:"rooms"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPeerBody)).Decode(&body); err != nil {
		return nil, err
	}
	for i := range body.Rooms {
		if body.Rooms[i].Node == "" {
			body.Rooms[i].Node = p.ID
		}
	}
	return body.Rooms, nil
}

type peerStatusError struct{ status string }

func (e *peerStatusError) Error() string { return "answered " + strings.TrimSpace(e.status) }
