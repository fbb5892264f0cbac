package turn

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
)

// ICEServer has the shape of a browser RTCIceServer plus the credential's
// lifetime, so it can be passed to RTCPeerConnection as is.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
	// TTL is the credential's remaining lifetime in seconds.
	TTL int64 `json:"ttl,omitempty"`
}

// ErrNoSecret means credentials were asked for but turn.shared_secrets is empty.
var ErrNoSecret = errors.New("turn: no shared secret configured (turn.shared_secrets)")

// ICEServer returns TURN URLs for this configuration and a REST credential
// for user signed with the first shared secret. It needs no running server
// (the "parley turn credentials" command uses it).
func (c Config) ICEServer(user string, ttl time.Duration, now time.Time) (ICEServer, error) {
	if len(c.SharedSecrets) == 0 {
		return ICEServer{}, ErrNoSecret
	}
	if user == "" {
		// "<expiry>:" would be refused by the server itself.
		return ICEServer{}, errors.New("turn credentials: empty user name")
	}
	if ttl <= 0 {
		ttl = c.CredentialTTL
	}
	u, p := RESTCredentials(c.SharedSecrets[0], user, ttl, now)

	return ICEServer{
		URLs:       c.urls(firstPort(c.ListenUDP), firstPort(c.ListenTCP), firstPort(c.ListenTLS)),
		Username:   u,
		Credential: p,
		TTL:        int64(ttl / time.Second),
	}, nil
}

// ICEServers returns the TURN servers a client of this server should use,
// with a fresh credential for user valid for turn.credential_ttl. It returns
// nil when no shared secret is configured or user is empty.
func (s *Server) ICEServers(user string) []ICEServer {
	ice, err := s.cfg.ICEServer(user, s.cfg.CredentialTTL, s.now())
	if err != nil {
		return nil
	}
	a := s.Addrs()
	ice.URLs = s.cfg.urls(firstBoundPort(a.UDP), firstBoundPort(a.TCP), firstBoundPort(a.TLS))

	return []ICEServer{ice}
}

// urls lists turn: (UDP, TCP) and turns: (TLS) URLs for every public host.
// A port of 0 means no listener of that kind.
func (c Config) urls(udpPort, tcpPort, tlsPort int) []string {
	var hosts []string
	switch {
	case c.PublicHost != "":
		hosts = []string{c.PublicHost}
	default:
		if c.PublicIPv4 != "" {
			hosts = append(hosts, c.PublicIPv4)
		}
		if c.PublicIPv6 != "" {
			hosts = append(hosts, "["+c.PublicIPv6+"]")
		}
	}
	var out []string
	for _, h := range hosts {
		if udpPort > 0 {
			out = append(out, "turn:"+h+":"+strconv.Itoa(udpPort)+"?transport=udp")
		}
		if tcpPort > 0 {
			out = append(out, "turn:"+h+":"+strconv.Itoa(tcpPort)+"?transport=tcp")
		}
		if tlsPort > 0 && c.TLSCert != "" {
			out = append(out, "turns:"+h+":"+strconv.Itoa(tlsPort)+"?transport=tcp")
		}
	}

	return out
}

func firstPort(addrs []string) int {
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				return n
			}
		}
	}

	return 0
}

func firstBoundPort(addrs []net.Addr) int {
	for _, a := range addrs {
		switch v := a.(type) {
		case *net.UDPAddr:
			return v.Port
		case *net.TCPAddr:
			return v.Port
		}
	}

	return 0
}

// credentialsResponse is the JSON body of the credentials endpoint, in the
// shape of the TURN REST API draft with RTCIceServer field names.
type credentialsResponse struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	TTL        int64    `json:"ttl"`
}

// CredentialsHandler serves TURN credentials over HTTP (GET or POST).
// authorize authenticates the request (for example by API key) and names
// the user; when it refuses, the answer is 401. The body is
// {"urls":[...],"username":"...","credential":"...","ttl":seconds}.
func (s *Server) CredentialsHandler(authorize func(*http.Request) (user string, ok bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")

			return
		}
		user, ok := authorize(r)
		if !ok || user == "" {
			writeJSONError(w, http.StatusUnauthorized, "unauthorized")

			return
		}
		servers := s.ICEServers(user)
		if len(servers) == 0 {
			writeJSONError(w, http.StatusServiceUnavailable, "no TURN shared secret configured")

			return
		}
		ice := servers[0]
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(credentialsResponse(ice))
	})
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
