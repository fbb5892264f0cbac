package proto

// Client statistics (docs/protocol.md, "client_stats"): every 10 s the
// web client sends a summary of its RTCPeerConnection.getStats(), which
// the admin API shows per participant. The numbers are the client's own
// word: they are bounded here so a client cannot store or count absurd
// values, and the server keeps only the latest summary.

// TypeClientStats is the client's getStats() summary.
const TypeClientStats = "client_stats"

// Limits of a client_stats body. Counters are cumulative over the
// connection's life; 2^53 is the largest integer JavaScript counts
// exactly, so no honest client exceeds it.
const (
	MaxStatsCounter = 1 << 53
	MaxStatsTracks  = 256            // remote tracks summed into one figure
	MaxStatsMillis  = 60_000         // jitter and round-trip time, ms
	MaxStatsBitrate = 10_000_000_000 // available outgoing bitrate, bit/s (10 Gbit/s)
)

// ClientStatsBody is the body of "client_stats".
type ClientStatsBody struct {
	Audio ClientAudioStats `json:"audio"`
	Video ClientVideoStats `json:"video"`
	// RTTMs is the round-trip time of the subscriber connection's
	// selected candidate pair, in milliseconds (0: unknown).
	RTTMs float64 `json:"rttMs"`
	// AvailableOutgoingBitrate is the publisher connection's estimate of
	// what it may send, bit/s (0: unknown).
	AvailableOutgoingBitrate float64 `json:"availableOutgoingBitrate"`
}

// ClientAudioStats sums the client's received audio tracks.
type ClientAudioStats struct {
	Tracks               int   `json:"tracks"`
	TotalSamplesReceived int64 `json:"totalSamplesReceived"`
	ConcealedSamples     int64 `json:"concealedSamples"`
	// SilentConcealedSamples are the concealed samples played while the
	// sender was silent (Opus DTX: comfort noise), which no one hears as
	// a loss.
	SilentConcealedSamples int64   `json:"silentConcealedSamples"`
	PacketsReceived        int64   `json:"packetsReceived"`
	PacketsLost            int64   `json:"packetsLost"`
	JitterMs               float64 `json:"jitterMs"` // the largest of the tracks'
}

// ClientVideoStats sums the client's received video tracks.
type ClientVideoStats struct {
	Tracks        int   `json:"tracks"`
	FramesDecoded int64 `json:"framesDecoded"`
	FramesDropped int64 `json:"framesDropped"`
	PacketsLost   int64 `json:"packetsLost"`
	FreezeCount   int64 `json:"freezeCount"`
}

// Validate bounds every number and requires concealed samples to be
// part of the samples received, as getStats() defines them.
func (b *ClientStatsBody) Validate(typ string) *Error {
	counters := []struct {
		name string
		v    int64
	}{
		{"audio.totalSamplesReceived", b.Audio.TotalSamplesReceived},
		{"audio.concealedSamples", b.Audio.ConcealedSamples},
		{"audio.silentConcealedSamples", b.Audio.SilentConcealedSamples},
		{"audio.packetsReceived", b.Audio.PacketsReceived},
		{"audio.packetsLost", b.Audio.PacketsLost},
		{"video.framesDecoded", b.Video.FramesDecoded},
		{"video.framesDropped", b.Video.FramesDropped},
		{"video.packetsLost", b.Video.PacketsLost},
		{"video.freezeCount", b.Video.FreezeCount},
	}
	for _, c := range counters {
		if c.v < 0 || c.v > MaxStatsCounter {
			return BadRequest("%s: %s must be between 0 and 2^53", typ, c.name)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"audio.tracks", b.Audio.Tracks}, {"video.tracks", b.Video.Tracks}} {
		if n.v < 0 || n.v > MaxStatsTracks {
			return BadRequest("%s: %s must be between 0 and %d", typ, n.name, MaxStatsTracks)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
		max  float64
	}{
		{"audio.jitterMs", b.Audio.JitterMs, MaxStatsMillis},
		{"rttMs", b.RTTMs, MaxStatsMillis},
		{"availableOutgoingBitrate", b.AvailableOutgoingBitrate, MaxStatsBitrate},
	} {
		// JSON has no NaN or infinity, so a range check is complete.
		if f.v < 0 || f.v > f.max {
			return BadRequest("%s: %s must be between 0 and %g", typ, f.name, f.max)
		}
	}
	if b.Audio.ConcealedSamples > b.Audio.TotalSamplesReceived {
		return BadRequest("%s: audio.concealedSamples cannot exceed audio.totalSamplesReceived", typ)
	}
	if b.Audio.SilentConcealedSamples > b.Audio.ConcealedSamples {
		return BadRequest("%s: audio.silentConcealedSamples cannot exceed audio.concealedSamples", typ)
	}
	return nil
}
