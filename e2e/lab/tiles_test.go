package lab

import (
	"context"
	"strings"

	"github.com/parleyhq/parley/e2e"
)

// Small tiles: a window of 640x540 CSS pixels at a device scale of 1
// shows six tiles in a 3x2 grid of about 206x116 px each, which the
// server serves with the lowest simulcast layer (320x180 covers it).
// The page's header and controls take about 290 px of the height: in
// the 640x360 window used before, the grid was 73 px high, its 160x90
// tiles scrolled, and the sixth participant's tile was out of view in
// every page, so the client reported it hidden and no one received
// that camera (seen 2026-12-04 and 2026-12-05, tilesSeen).
const (
	smallWindowArg = "--window-size=640,540"
	smallScaleArg  = "--force-device-scale-factor=1"
)

// launchSmall starts a participant whose page will show every tile
// small. The
// fake camera stays 1280x720 (what the web client asks for): the layers'
// sizes (320x180, 640x360, 1280x720) are what the server's tile-size
// choice and the checks of decoded heights assume, and once dynacast has
// paused the unneeded upper layers the browser only encodes 320x180.
func (c *call) launchSmall(name string) *peer {
	c.t.Helper()
	return c.launch(name, smallWindowArg, smallScaleArg)
}

// setTilesShown shows or hides the video of the named participants'
// tiles in p's page the way a page can (display: none), so the client's
// own visibility tracking (views.js: the element's size and the
// IntersectionObserver) reports them. It returns how many it changed.
func setTilesShown(ctx context.Context, p *peer, names []string, shown bool) (int, error) {
	display := "none"
	if shown {
		display = ""
	}
	list := `["` + strings.Join(names, `","`) + `"]`
	return e2e.Eval[int](ctx, p.b, `(() => {
		const names = new Set(`+list+`);
		let n = 0;
		for (const tile of document.querySelectorAll('[data-testid=tile]')) {
			const name = tile.querySelector('[data-testid=tile-name]');
			const video = tile.querySelector('[data-testid=tile-video]');
			if (name && video && names.has(name.textContent.trim())) {
				video.style.display = '`+display+`';
				n++;
			}
		}
		return n;
	})()`)
}

// tilesSeen describes the tiles of p's page for a log line: each
// participant's tile in device pixels and whether it lies within the
// scrolling grid's view (what the client reports as visible, with its
// own size, to the server), and the layout's mode.
func tilesSeen(ctx context.Context, p *peer) string {
	s, err := e2e.Eval[string](ctx, p.b, `(() => {
		const d = window.devicePixelRatio || 1, out = [];
		const grid = document.querySelector('.grid');
		const g = grid ? grid.getBoundingClientRect() : null;
		for (const tile of document.querySelectorAll('[data-testid=tile]')) {
			const name = tile.querySelector('[data-testid=tile-name]');
			const r = tile.getBoundingClientRect();
			const inView = g ? r.bottom > g.top && r.top < g.bottom && r.right > g.left && r.left < g.right : true;
			out.push((name ? name.textContent.trim() : '?') + ' ' + Math.round(r.width * d) + 'x' + Math.round(r.height * d) +
				(inView && getComputedStyle(tile).display !== 'none' ? '' : ' (out of view)'));
		}
		return (g ? 'grid ' + Math.round(g.width) + 'x' + Math.round(g.height) + ' css px: ' : '') + out.join(', ');
	})()`)
	if err != nil {
		return err.Error()
	}
	return s
}
