// Package promtext reads the Prometheus text exposition a Parley server
// serves at /metrics, so the load tools report the server's own figures
// (CPU seconds, resident memory, forwarded packets) rather than the
// generator's.
package promtext

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Series maps each series, written as in the exposition (the metric name
// with its labels, `x_total{code="a"}`), to its value.
type Series map[string]float64

// Scrape fetches url (bounded to 10 s) and parses it.
func Scrape(ctx context.Context, url string) (Series, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	s, err := Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return s, nil
}

// Parse reads the text format: comments and blank lines are skipped, a
// trailing timestamp is ignored, and a value that is not a number is an
// error (a figure computed from a half-read exposition would mislead).
func Parse(r io.Reader) (Series, error) {
	out := Series{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// Label values may contain spaces: with labels, the series ends
		// at the last closing brace.
		var series, rest string
		if i := strings.IndexByte(line, '{'); i >= 0 && !strings.ContainsRune(line[:i], ' ') {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("unterminated labels in %q", line)
			}
			series, rest = line[:j+1], line[j+1:]
		} else {
			var ok bool
			if series, rest, ok = strings.Cut(line, " "); !ok {
				return nil, fmt.Errorf("no value in %q", line)
			}
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("series %s: bad value %q", series, val)
		}
		out[series] = v
	}
	return out, sc.Err()
}

// Sum adds up metric name over all its label sets (0 if absent).
func (s Series) Sum(name string) float64 {
	total := 0.0
	for series, v := range s {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}

// Value returns one series exactly as written, and whether it is there.
func (s Series) Value(series string) (float64, bool) {
	v, ok := s[series]
	return v, ok
}
