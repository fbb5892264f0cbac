//go:build linux

package netlab

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"slices"
	"strings"
)

// Plot draws the timeline as a PNG: one panel per host, time across;
// the downlink cap (red) and the received video bitrate (blue) on the
// left scale in kbit/s, each received camera's decoded height (green
// shades) on the right scale in pixels.
func (tl *Timeline) Plot(w io.Writer) error {
	var hosts []string
	var tMax float64
	kbpsMax := 500.0
	for _, s := range tl.Samples {
		if !slices.Contains(hosts, s.Host) {
			hosts = append(hosts, s.Host)
		}
		tMax = max(tMax, s.T)
		kbpsMax = max(kbpsMax, float64(s.DownCapKbps), videoKbps(s))
	}
	if len(hosts) == 0 {
		return fmt.Errorf("netlab: plot: no samples")
	}
	tMax = max(tMax, 10)
	kbpsMax = niceCeil(kbpsMax * 1.1)
	const pxMax = 800.0

	const width, panelH, top = 1100, 240, 30
	img := image.NewRGBA(image.Rect(0, 0, width, top+panelH*len(hosts)))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	text(img, 10, 8, strings.ToLower(tl.Scenario)+"   red: downlink cap  blue: video kbit/s  green: decoded height px", colBlack)

	for hi, host := range hosts {
		y0 := top + hi*panelH
		area := image.Rect(70, y0+20, width-70, y0+panelH-30)
		fill(img, area, color.RGBA{248, 248, 248, 255})
		text(img, 90, y0+4, host, colBlack) // right of the scale's label
		sx := func(t float64) int { return area.Min.X + int(t/tMax*float64(area.Dx())) }
		sy := func(v, vmax float64) int {
			v = min(max(v, 0), vmax)
			return area.Max.Y - int(v/vmax*float64(area.Dy()))
		}
		// Grid and scales.
		for i := 0; i <= 4; i++ {
			y := area.Max.Y - i*area.Dy()/4
			hline(img, area.Min.X, area.Max.X, y, color.RGBA{220, 220, 220, 255})
			text(img, 4, y-5, fmt.Sprintf("%.0f", kbpsMax*float64(i)/4), colBlue)
			text(img, area.Max.X+6, y-5, fmt.Sprintf("%.0f", pxMax*float64(i)/4), colGreen)
		}
		for t := 0.0; t <= tMax; t += 10 {
			x := sx(t)
			vline(img, x, area.Min.Y, area.Max.Y, color.RGBA{220, 220, 220, 255})
			text(img, x-6, area.Max.Y+6, fmt.Sprintf("%.0fs", t), colBlack)
		}
		text(img, 4, area.Min.Y-14, "kbit/s", colBlue)
		text(img, area.Max.X+6, area.Min.Y-14, "px", colGreen)

		var ss []Sample
		var senders []string
		for _, s := range tl.Samples {
			if s.Host != host {
				continue
			}
			ss = append(ss, s)
			for _, tr := range s.Tracks {
				if tr.Kind == "video" && !slices.Contains(senders, tr.From) {
					senders = append(senders, tr.From)
				}
			}
		}
		slices.Sort(senders)
		for i := 1; i < len(ss); i++ {
			a, b := ss[i-1], ss[i]
			capA, capB := float64(a.DownCapKbps), float64(b.DownCapKbps)
			if capA == 0 {
				capA = kbpsMax
			}
			if capB == 0 {
				capB = kbpsMax
			}
			line(img, sx(a.T), sy(capA, kbpsMax), sx(b.T), sy(capA, kbpsMax), colRed) // a step
			line(img, sx(b.T), sy(capA, kbpsMax), sx(b.T), sy(capB, kbpsMax), colRed)
			line(img, sx(a.T), sy(videoKbps(a), kbpsMax), sx(b.T), sy(videoKbps(b), kbpsMax), colBlue)
			for si, from := range senders {
				c := greens[si%len(greens)]
				ha, hb := height(a, from), height(b, from)
				line(img, sx(a.T), sy(float64(ha), pxMax)-si, sx(b.T), sy(float64(hb), pxMax)-si, c)
			}
		}
		for si, from := range senders {
			text(img, area.Min.X+200+si*160, y0+4, "from "+strings.ToLower(from), greens[si%len(greens)])
		}
	}
	return png.Encode(w, img)
}

func videoKbps(s Sample) float64 {
	var sum float64
	for _, t := range s.Tracks {
		if t.Kind == "video" {
			sum += t.Kbps
		}
	}
	return sum
}

func height(s Sample, from string) int {
	for _, t := range s.Tracks {
		if t.Kind == "video" && t.From == from {
			return t.Height
		}
	}
	return 0
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

//nolint:gochecknoglobals // read-only palette
var (
	colBlack = color.RGBA{0, 0, 0, 255}
	colRed   = color.RGBA{220, 30, 30, 255}
	colBlue  = color.RGBA{30, 80, 220, 255}
	colGreen = color.RGBA{20, 140, 40, 255}
	greens   = []color.RGBA{{20, 140, 40, 255}, {90, 190, 60, 255}, {0, 100, 80, 255}, {140, 170, 20, 255}}
)

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

// line draws a 2-pixel-thick line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for range dx - dy + 1 {
		img.SetRGBA(x0, y0, c)
		img.SetRGBA(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// glyphs is a 3x5 pixel font: each row's three bits, left to right.
var glyphs = map[rune][5]uint8{ //nolint:gochecknoglobals // read-only table
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 3, 1, 7}, '4': {5, 5, 7, 1, 1},
	'5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1}, '8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7},
	'a': {2, 5, 7, 5, 5}, 'b': {6, 5, 6, 5, 6}, 'c': {3, 4, 4, 4, 3}, 'd': {6, 5, 5, 5, 6}, 'e': {7, 4, 6, 4, 7},
	'f': {7, 4, 6, 4, 4}, 'g': {3, 4, 5, 5, 3}, 'h': {5, 5, 7, 5, 5}, 'i': {7, 2, 2, 2, 7}, 'j': {1, 1, 1, 5, 2},
	'k': {5, 5, 6, 5, 5}, 'l': {4, 4, 4, 4, 7}, 'm': {5, 7, 7, 5, 5}, 'n': {6, 5, 5, 5, 5}, 'o': {2, 5, 5, 5, 2},
	'p': {6, 5, 6, 4, 4}, 'q': {2, 5, 5, 6, 3}, 'r': {6, 5, 6, 5, 5}, 's': {3, 4, 2, 1, 6}, 't': {7, 2, 2, 2, 2},
	'u': {5, 5, 5, 5, 7}, 'v': {5, 5, 5, 5, 2}, 'w': {5, 5, 7, 7, 5}, 'x': {5, 5, 2, 5, 5}, 'y': {5, 5, 2, 2, 2},
	'z': {7, 1, 2, 4, 7}, '/': {1, 1, 2, 4, 4}, '.': {0, 0, 0, 0, 2}, ':': {0, 2, 0, 2, 0}, '-': {0, 0, 7, 0, 0},
	'(': {1, 2, 2, 2, 1}, ')': {4, 2, 2, 2, 4}, '=': {0, 7, 0, 7, 0}, '%': {5, 1, 2, 4, 5}, ',': {0, 0, 0, 2, 4},
	'>': {4, 2, 1, 2, 4}, '<': {1, 2, 4, 2, 1}, '_': {0, 0, 0, 0, 7}, '+': {0, 2, 7, 2, 0},
}

// text draws s at (x, y) in the 3x5 font scaled by 2; characters it
// lacks are drawn as blanks.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	const scale = 2
	for _, r := range strings.ToLower(s) {
		g := glyphs[r]
		for row := range 5 {
			for col := range 3 {
				if g[row]&(4>>col) == 0 {
					continue
				}
				for dy := range scale {
					for dx := range scale {
						img.SetRGBA(x+col*scale+dx, y+row*scale+dy, c)
					}
				}
			}
		}
		x += 4 * scale
	}
}
