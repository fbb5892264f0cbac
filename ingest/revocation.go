package ingest

import (
	"context"
	"log/slog"
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

// keyed is a live publish whose key is checked: a local stream or a
// relay (relay.go).
type keyed struct {
	keyID  string
	log    *slog.Logger
	revoke func()
}

func (s *Service) checkKeys(ctx context.Context, rc revocationChecker) {
	s.life.Lock()
	var live []keyed
	for _, e := range s.entries {
		if st := e.live; st != nil && st.keyID != "" && !st.revoked.Load() {
			live = append(live, keyed{st.keyID, st.log, st.revoke})
		}
	}
	for r := range s.relays {
		if r.out != nil && r.keyID != "" && !r.revoked.Load() {
			live = append(live, keyed{r.keyID, r.log, r.revoke})
		}
	}
	s.life.Unlock()
	for _, k := range live {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		revoked, err := rc.Revoked(cctx, k.keyID)
		cancel()
		switch {
		case err != nil:
			// Keep the stream: a store hiccup must not cut live streams.
			k.log.Warn("ingest: could not check the stream key", "key_id", k.keyID, "err", err)
		case revoked:
			k.revoke()
		}
	}
}
