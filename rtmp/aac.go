package rtmp

import (
	"fmt"
)

var aacSampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350} //nolint:gochecknoglobals // read-only table

// AudioConfig describes the AAC stream a Transcoder receives.
type AudioConfig struct {
	ObjectType   int    // 2 = AAC-LC; HE-AAC streams report their core type
	SampleRate   int    // core sample rate in Hz
	Channels     int    // 1..7 (channel configuration)
	ASC          []byte // the raw AudioSpecificConfig
	freqIndex    int
	channelsConf int
}

type ascReader struct {
	bitReader
}

func (r *ascReader) objectType() (int, error) {
	v, err := r.u(5)
	if err != nil {
		return 0, err
	}
	if v == 31 {
		ext, err := r.u(6)
		if err != nil {
			return 0, err
		}
		v = 32 + ext
	}
	return int(v), nil
}

func (r *ascReader) frequency() (int, int, error) {
	idx, err := r.u(4)
	if err != nil {
		return 0, 0, err
	}
	if idx == 15 {
		f, err := r.u(24)
		if err != nil {
			return 0, 0, err
		}
		return 15, int(f), nil
	}
	if int(idx) >= len(aacSampleRates) {
		return 0, 0, fmt.Errorf("sampling frequency index %d", idx)
	}
	return int(idx), aacSampleRates[idx], nil
}

// parseAudioSpecificConfig parses the AAC sequence header body (ISO/IEC
// 14496-3 1.6.2.1) far enough to build ADTS headers. Only the object types
// ADTS can carry (Main, LC, SSR, LTP) are accepted; HE-AAC with explicit
// signalling is reduced to its AAC-LC core, which decoders upsample.
func parseAudioSpecificConfig(b []byte) (AudioConfig, error) {
	var c AudioConfig
	if len(b) < 2 {
		return c, fmt.Errorf("%w: AudioSpecificConfig too short (%d bytes)", ErrMalformed, len(b))
	}
	r := &ascReader{bitReader{b: b}}
	fail := func(err error) (AudioConfig, error) {
		return c, fmt.Errorf("%w: AudioSpecificConfig: %w", ErrMalformed, err)
	}
	ot, err := r.objectType()
	if err != nil {
		return fail(err)
	}
	idx, rate, err := r.frequency()
	if err != nil {
		return fail(err)
	}
	ch, err := r.u(4)
	if err != nil {
		return fail(err)
	}
	if ot == 5 || ot == 29 { // SBR / PS: extension rate, then the core type
		if _, _, err := r.frequency(); err != nil {
			return fail(err)
		}
		if ot, err = r.objectType(); err != nil {
			return fail(err)
		}
	}
	if ot < 1 || ot > 4 {
		return c, fmt.Errorf("%w: AAC object type %d; use AAC-LC", ErrUnsupportedAudioCodec, ot)
	}
	if idx == 15 {
		return c, fmt.Errorf("%w: AAC explicit sample rate %d Hz; use 44.1 or 48 kHz", ErrUnsupportedAudioCodec, rate)
	}
	if ch < 1 || ch > 7 {
		return c, fmt.Errorf("%w: AAC channel configuration %d; use mono or stereo", ErrUnsupportedAudioCodec, ch)
	}
	c.ObjectType, c.SampleRate, c.Channels = ot, rate, int(ch)
	c.freqIndex, c.channelsConf = idx, int(ch)
	c.ASC = append([]byte(nil), b...)
	return c, nil
}

// appendADTS appends one ADTS frame (7-byte header, no CRC) holding the raw
// AAC access unit au.
func appendADTS(dst []byte, c AudioConfig, au []byte) ([]byte, error) {
	n := len(au) + 7
	if n > 0x1fff {
		return dst, fmt.Errorf("%w: AAC frame of %d bytes does not fit ADTS", ErrMalformed, len(au))
	}
	if c.ObjectType < 1 || c.ObjectType > 4 {
		return dst, fmt.Errorf("%w: AAC object type %d cannot be framed as ADTS", ErrUnsupportedAudioCodec, c.ObjectType)
	}
	profile := byte(c.ObjectType - 1)
	dst = append(dst,
		0xff,
		0xf1, // MPEG-4, layer 0, no CRC
		profile<<6|byte(c.freqIndex)<<2|byte(c.channelsConf>>2)&1,
		byte(c.channelsConf&3)<<6|byte(n>>11),
		byte(n>>3),
		byte(n&7)<<5|0x1f,
		0xfc, // buffer fullness 0x7ff (VBR), one raw data block
	)
	return append(dst, au...), nil
}
