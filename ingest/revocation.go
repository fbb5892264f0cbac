package ingest

import (
	"context"
	"time"
)

// revocationChecker is the part of a key store that can say whether a key
// was revoked after a stream started with it; *KeyStore has it.
type revocationChecker interface {
	Revoked(ctx context.Context, id string) (bool, error)
}

// watchKeys checks the keys of live streams every KeyCheckInterval until
// ctx ends, and ends the streams whose key was revoked. A key store
// without Revoked (tests' fakes) makes it just wait for ctx.
func (s *Service) watchKeys(ctx context.Context) {
	rc, ok := s.keys.(revocationChecker)
	if !ok {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(s.cfg.KeyCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkKeys(ctx, rc)
		}
	}
}

func (s *Service) checkKeys(ctx context.Context, rc revocationChecker) {
	s.life.Lock()
	var live []*stream
	for _, e := range s.entries {
		if e.live != nil && e.live.keyID != "" && !e.live.revoked.Load() {
			live = append(live, e.live)
		}
	}
	var relays []*relay
	for r := range s.relays {
		if r.keyID != "" && !r.revoked.Load() {
			relays = append(relays, r)
		}
	}
	s.life.Unlock()
	for _, r := range relays {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		revoked, err := rc.Revoked(cctx, r.keyID)
		cancel()
		switch {
		case err != nil:
			r.log.Warn("ingest: could not check the stream key", "key_id", r.keyID, "err", err)
		case revoked:
			r.revoke()
		}
	}
	for _, st := range live {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		revoked, err := rc.Revoked(cctx, st.keyID)
		cancel()
		switch {
		case err != nil:
			// Keep the stream: a store hiccup must not cut live streams.
			st.log.Warn("ingest: could not check the stream key", "key_id", st.keyID, "err", err)
		case revoked:
			st.revoke()
		}
	}
}
