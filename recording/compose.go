package recording

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ComposedName is the composed recording's file in a recording's
// directory.
const ComposedName = "composed.mp4"

// Canvas of the composed recording.
const (
	composeWidth  = 1280
	composeHeight = 720
	composeFPS    = 25
)

// The composed recording is made after the meeting, from the per-track
// files, rather than live: the per-track files are the lossless record
// anyway, composing afterwards costs the server nothing during the call,
// a slow or crashed ffmpeg cannot disturb the meeting or lose it, and the
// layout can use what is known only at the end (who spoke, who shared).

// tile is where one video goes on the canvas.
type tile struct{ x, y, w, h int }

// layout places cameras in a grid, or a shared screen large with the
// cameras in a column beside it.
func layout(cameras int, screen bool) (screenTile tile, cams []tile) {
	if screen {
		screenTile = tile{0, 0, composeWidth * 3 / 4, composeHeight}
		cw := composeWidth - screenTile.w
		ch := cw * 9 / 16
		for i := range min(cameras, composeHeight/ch) {
			cams = append(cams, tile{screenTile.w, i * ch, cw, ch})
		}
		return screenTile, cams
	}
	if cameras == 0 {
		return screenTile, nil
	}
	cols := int(math.Ceil(math.Sqrt(float64(cameras))))
	rows := (cameras + cols - 1) / cols
	w, h := composeWidth/cols, composeHeight/rows
	for i := range cameras {
		r, c := i/cols, i%cols
		inRow := min(cols, cameras-r*cols)
		x0 := (composeWidth - inRow*w) / 2 // the last row centred
		cams = append(cams, tile{x0 + c*w, r * h, w, h})
	}
	return screenTile, cams
}

// label makes a display name safe inside an ffmpeg filter graph: letters,
// digits, spaces and a few marks; everything with a meaning to the
// filter syntax is dropped.
func label(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == ' ', r == '.', r == '-', r == '_', r == '(', r == ')':
			b.WriteRune(r)
		}
		if b.Len() >= 40 {
			break
		}
	}
	return strings.TrimSpace(b.String())
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// compVideo is one video of a composition: the name drawn on it and
// whatever the caller needs to give ffmpeg's filter graph its input pad.
type compVideo[T any] struct {
	name string
	src  T
}

// compositionGraph is the filter graph of a composition, shared by the
// composed recording and the live restream: a dark canvas with the first
// shared screen large and the cameras beside it, or the cameras in a
// grid, each with its name; and every audio input mixed (silence when
// there is none). length bounds the canvas and the silence; 0 makes them
// endless, for a live composition. videoPad and audioPad give the input
// pad of a placed video and of the i-th audio, in the order ffmpeg's
// inputs are to be given (a recording adds an input per call). It returns
// the graph's chains and its video and audio output labels.
func compositionGraph[T any](cams, screens []compVideo[T], audios int, length time.Duration,
	videoPad func(T) string, audioPad func(i int) string,
) (graph []string, videoOut, audioOut string) {
	canvas := fmt.Sprintf("color=c=0x202124:s=%dx%d:r=%d", composeWidth, composeHeight, composeFPS)
	if length > 0 {
		canvas += ":d=" + seconds(length)
	}
	graph = append(graph, canvas+"[bg0]")
	screenTile, camTiles := layout(len(cams), len(screens) > 0)
	type placed struct {
		v    compVideo[T]
		tile tile
	}
	var videos []placed
	if len(screens) > 0 {
		videos = append(videos, placed{screens[0], screenTile}) // the first share; a later one shows in its own file
	}
	for i, tl := range camTiles {
		videos = append(videos, placed{cams[i], tl})
	}
	bg := "bg0"
	for i, v := range videos {
		name := label(v.v.name)
		f := fmt.Sprintf("%sscale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2:color=0x202124",
			videoPad(v.v.src), v.tile.w, v.tile.h, v.tile.w, v.tile.h)
		if name != "" {
			f += fmt.Sprintf(",drawtext=text='%s':fontcolor=white:fontsize=%d:x=10:y=h-th-10:box=1:boxcolor=black@0.5:boxborderw=6",
				name, max(14, v.tile.h/18))
		}
		graph = append(graph, f+fmt.Sprintf("[v%d]", i))
		next := fmt.Sprintf("bg%d", i+1)
		graph = append(graph, fmt.Sprintf("[%s][v%d]overlay=x=%d:y=%d:eof_action=pass[%s]", bg, i, v.tile.x, v.tile.y, next))
		bg = next
	}
	if audios > 0 {
		var ins strings.Builder
		for i := range audios {
			ins.WriteString(audioPad(i))
		}
		graph = append(graph, fmt.Sprintf("%samix=inputs=%d:duration=longest:normalize=0[aout]", ins.String(), audios))
	} else {
		silence := "anullsrc=r=48000:cl=stereo"
		if length > 0 {
			silence += ",atrim=duration=" + seconds(length)
		}
		graph = append(graph, silence+"[aout]")
	}
	return graph, "[" + bg + "]", "[aout]"
}

// composeArgs is ffmpeg's command line for m's composition into out.
func composeArgs(m Manifest, dir, out string) ([]string, error) {
	var cams, screens []compVideo[TrackRef]
	var audios []TrackRef
	length := time.Duration(0)
	if m.Ended != nil {
		length = m.Ended.Sub(m.Started)
	}
	for _, t := range m.Tracks {
		if t.Frames == 0 {
			continue
		}
		length = max(length, time.Duration(t.EndMs+40)*time.Millisecond)
		name := t.Name
		if label(name) == "" {
			name = t.Identity
		}
		switch {
		case t.Kind == "audio":
			audios = append(audios, t)
		case t.Source == "screen":
			screens = append(screens, compVideo[TrackRef]{name, t})
		default:
			cams = append(cams, compVideo[TrackRef]{name, t})
		}
	}
	if len(cams)+len(screens)+len(audios) == 0 {
		return nil, errors.New("recording: nothing was recorded to compose")
	}
	args := []string{"-nostdin", "-v", "error", "-y"}
	input := 0
	addInput := func(t TrackRef, offset bool) int {
		if offset {
			// A video file's timestamps begin when its first frame came;
			// ffmpeg starts every input at zero unless told the offset.
			args = append(args, "-itsoffset", seconds(time.Duration(t.StartMs)*time.Millisecond))
		}
		args = append(args, "-i", filepath.Join(dir, t.File))
		input++
		return input - 1
	}
	graph, videoOut, audioOut := compositionGraph(cams, screens, len(audios), length,
		func(t TrackRef) string { return fmt.Sprintf("[%d:v]", addInput(t, true)) },
		// Ogg files start at the recording's start: no offset.
		func(i int) string { return fmt.Sprintf("[%d:a]", addInput(audios[i], false)) })
	args = append(args, "-filter_complex", strings.Join(graph, ";"),
		"-map", videoOut, "-map", audioOut,
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-r", strconv.Itoa(composeFPS),
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000",
		"-t", seconds(length), "-movflags", "+faststart", out)
	return args, nil
}

// Compose makes the composed MP4 (H.264 + AAC, playable in a browser's
// <video>) of a finished recording from its per-track files, with
// ffmpeg, and records it in the manifest.
func (s *Store) Compose(ctx context.Context, room, id string) (string, error) {
	m, err := s.Get(room, id)
	if err != nil {
		return "", err
	}
	if m.State == StateRecording {
		return "", ErrActive
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", fmt.Errorf("recording: composing needs ffmpeg: %w", err)
	}
	dir := filepath.Join(s.dir, room, id)
	tmp := filepath.Join(dir, "composing.mp4")
	args, err := composeArgs(m, dir, tmp)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("recording: ffmpeg composition: %w: %s", err, strings.TrimSpace(string(out)))
	}
	final := filepath.Join(dir, ComposedName)
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("recording: %w", err)
	}
	if info, err := os.Stat(final); err == nil {
		s.used.Add(info.Size())
	}
	m.Composed = ComposedName
	if err := writeManifest(dir, &m); err != nil {
		return "", err
	}
	return final, nil
}
