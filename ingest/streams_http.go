package ingest

import "net/http"

// StreamsPath is where StreamsHandler is mounted, behind the admin check.
const StreamsPath = "/api/admin/ingress-streams"

// StreamsHandler lists this node's live ingest streams for admins:
//
//	GET /api/admin/ingress-streams -> 200 {"streams":[StreamStatus...]}
//
// In a cluster each node lists its own: a local stream with its
// participant id, an RTMP publish relayed to the room's node with
// relayedTo (docs/cluster.md). Keys are never shown.
func (s *Service) StreamsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET only")
			return
		}
		streams := s.Streams()
		if streams == nil {
			streams = []StreamStatus{}
		}
		writeJSON(w, http.StatusOK, struct {
			Streams []StreamStatus `json:"streams"`
		}{streams})
	})
}
