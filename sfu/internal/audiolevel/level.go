package audiolevel

import (
	"math"
	"time"

	"github.com/pion/rtp"
)

// URI is the header extension to negotiate on publisher connections.
const URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Silent is the level of digital silence (-127 dBov).
const Silent = 127

// Parse reads an RFC 6464 extension element: the level in -dBov (0-127)
// and the voice-activity bit. ok is false when the element is missing.
func Parse(ext []byte) (level uint8, voice, ok bool) {
	if len(ext) == 0 {
		return Silent, false, false
	}
	return ext[0] & 0x7f, ext[0]&0x80 != 0, true
}

// Read reads the audio level of a packet whose audio-level extension has
// the negotiated id.
func Read(h *rtp.Header, id uint8) (level uint8, voice, ok bool) {
	if id == 0 {
		return Silent, false, false
	}
	return Parse(h.GetExtension(id))
}

// energy is 10^(-level/10) for every level, read-only.
//
//nolint:gochecknoglobals // read-only table
var energy = func() (t [128]float64) {
	for i := range t {
		t[i] = math.Pow(10, -float64(i)/10)
	}
	return t
}()

// frame is the duration one packet's level stands for: browsers send
// 20 ms Opus frames; a longer gap is treated as silence (DTX).
const frame = 20 * time.Millisecond

// Smoother is an exponential average of linear energy. The zero value is
// not usable: set Tau. It is not safe for concurrent use.
type Smoother struct {
	Tau     time.Duration
	energy  float64
	last    time.Time
	started bool
	// kFrame is exp(-frame/Tau) for kFrameTau: almost every packet is
	// one frame after the last, and math.Exp is most of the per-packet
	// cost in the forwarding path.
	kFrame    float64
	kFrameTau time.Duration
}

// decay is exp(-dt/Tau).
func (s *Smoother) decay(dt time.Duration) float64 {
	if dt != frame {
		return math.Exp(-float64(dt) / float64(s.Tau))
	}
	if s.kFrameTau != s.Tau {
		s.kFrame, s.kFrameTau = math.Exp(-float64(frame)/float64(s.Tau)), s.Tau
	}
	return s.kFrame
}

// Update adds a packet's level received at now; the time since the
// previous packet is what the packet stands for (see add).
func (s *Smoother) Update(now time.Time, level uint8) { s.add(now, now.Sub(s.last), level) }

// add adds one packet's level, received at now, that follows the
// previous packet by gap of audio: a frame's worth counts as the packet's
// own frame, anything beyond it was silence (DTX); a shorter gap (shorter
// frames) counts as what it is.
func (s *Smoother) add(now time.Time, gap time.Duration, level uint8) {
	dt := frame
	if s.started {
		dt = gap
		if dt > frame { // the time before this frame was silence
			s.energy *= math.Exp(-float64(dt-frame) / float64(s.Tau))
			dt = frame
		}
		if dt < 0 {
			dt = 0
		}
	}
	k := s.decay(dt)
	s.energy = s.energy*k + energy[level&0x7f]*(1-k)
	s.last, s.started = now, true
}

// DBov is the smoothed level at now in -dBov, 0 (loudest) to 127 (silence).
func (s *Smoother) DBov(now time.Time) float64 {
	if !s.started {
		return Silent
	}
	e := s.energy
	if dt := now.Sub(s.last); dt > frame {
		e *= math.Exp(-float64(dt-frame) / float64(s.Tau))
	}
	if e <= energy[Silent] {
		return Silent
	}
	return -10 * math.Log10(e)
}

// Loudness maps a level in -dBov to 0 (silence) .. 1 (0 dBov).
func Loudness(dbov float64) float64 {
	return min(1, max(0, 1-dbov/Silent))
}
