package ingest

import "time"

// setLimiterClock gives the WHIP limiter a fake clock.
func setLimiterClock(svc *Service, now func() time.Time) { svc.limiter.now = now }
