package e2e

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// tileBox is one shown tile as the user sees it.
type tileBox struct {
	Name   string  `json:"name"`
	Role   string  `json:"role"`
	Source string  `json:"source"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	W      float64 `json:"w"`
	H      float64 `json:"h"`
}

// tileBoxes returns the shown tiles and the grid's box.
func (p *participant) tileBoxes(ctx context.Context) (tiles []tileBox, grid tileBox) {
	p.t.Helper()
	v, err := Eval[struct {
		Tiles []tileBox `json:"tiles"`
		Grid  tileBox   `json:"grid"`
	}](ctx, p.B, `(() => {
		const box = (e) => { const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
		const tiles = [...document.querySelectorAll('[data-testid="tile"]')].filter(e => !e.hidden).map(e => ({
			name: e.querySelector('[data-testid="tile-name"]').textContent, role: e.dataset.role || '', source: e.dataset.source, ...box(e)}));
		return {tiles, grid: box(document.querySelector('[data-testid="grid"]'))};
	})()`)
	if err != nil {
		p.t.Fatal(err)
	}
	return v.Tiles, v.Grid
}

func findTile(tiles []tileBox, name string) *tileBox {
	for i := range tiles {
		if tiles[i].Name == name {
			return &tiles[i]
		}
	}
	return nil
}

// waitMain waits until the tile named name is the large one.
func (p *participant) waitMain(ctx context.Context, name string) []tileBox {
	p.t.Helper()
	var tiles []tileBox
	if !poll(ctx, 20*time.Second, func() bool {
		tiles, _ = p.tileBoxes(ctx)
		m := findTile(tiles, name)
		return m != nil && m.Role == "main"
	}) {
		p.t.Fatalf("%s: %q is not shown large; tiles %+v", p.Name, name, tiles)
	}
	return tiles
}

// checkControls: Leave and Chat clickable, nothing overflows sideways.
func (p *participant) checkControls(ctx context.Context, what string) {
	p.t.Helper()
	for _, id := range []string{"leave-button", "chat-toggle"} {
		if why := p.hitTest(ctx, id); why != "" {
			p.t.Errorf("%s %s: %s not clickable: %s", p.Name, what, id, why)
		}
	}
	if o := p.overflow(ctx); o != "" {
		p.t.Errorf("%s %s: horizontal overflow: %s", p.Name, what, o)
	}
}

// tileMenu opens the menu of the camera tile whose name is name.
func (p *participant) tileMenu(ctx context.Context, name string) string {
	p.t.Helper()
	sel := fmt.Sprintf(`[data-testid="tile"][aria-label=%q]`, name)
	if err := p.B.Click(ctx, sel+` [data-testid="tile-menu"]`); err != nil {
		p.t.Fatal(err)
	}
	return sel
}

// TestUXLayouts: three people in a grid (last row centred, two columns
// on a phone); a shared screen goes large for the others, not for its
// sharer; a pinned tile goes large; a tile goes fullscreen; a person's
// volume changes only their audio element; the layout menu switches to
// grid and speaker. Leave and Chat stay reachable throughout.
func TestUXLayouts(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "ux-layouts"
	ann := startSized(t, ctx, "Ann", 1280, 800)
	ann.joinAs(ctx, srv, room, "Ann")
	bob := startSized(t, ctx, "Bob", 1280, 800)
	bob.joinAs(ctx, srv, room, "Bob")
	cy := startSized(t, ctx, "Cy", 390, 844)
	cy.joinAs(ctx, srv, room, "Cy")
	for _, p := range []*participant{ann, bob, cy} {
		p.waitState(ctx, 20*time.Second, "seeing two others", func(s clientState) bool { return len(s.Participants) == 2 })
	}
	// Close Ann's chat panel so the grid has the width.
	if err := ann.B.Click(ctx, `[data-testid="chat-close"]`); err != nil {
		t.Fatal(err)
	}

	// Grid: equal tiles, each row centred in the grid.
	var tiles []tileBox
	var grid tileBox
	if !poll(ctx, 10*time.Second, func() bool {
		tiles, grid = ann.tileBoxes(ctx)
		return len(tiles) == 3 && tiles[0].W > 0
	}) {
		t.Fatalf("Ann: tiles %+v", tiles)
	}
	rows := map[float64][]tileBox{}
	for _, tb := range tiles {
		if tb.Role != "grid" || tb.W != tiles[0].W || tb.H != tiles[0].H {
			t.Errorf("Ann: grid tile %+v differs from %+v", tb, tiles[0])
		}
		rows[math.Round(tb.Y)] = append(rows[math.Round(tb.Y)], tb)
	}
	if len(rows) < 2 {
		t.Errorf("Ann: three tiles in %d row(s) at 1280x800 without the chat, want two rows", len(rows))
	}
	for y, row := range rows {
		left, right := math.Inf(1), math.Inf(-1)
		for _, tb := range row {
			left, right = math.Min(left, tb.X), math.Max(right, tb.X+tb.W)
		}
		if l, r := left-grid.X, grid.X+grid.W-right; math.Abs(l-r) > 12 {
			t.Errorf("Ann: row at y=%v not centred: %v px left, %v px right", y, l, r)
		}
	}
	ann.checkControls(ctx, "grid")
	ann.shot(ctx, "grid")
	// Two columns on the phone: two rows, two tiles in the first.
	cyTiles, _ := cy.tileBoxes(ctx)
	perRow := map[float64]int{}
	for _, tb := range cyTiles {
		perRow[math.Round(tb.Y)]++
	}
	most := 0
	for _, n := range perRow {
		most = max(most, n)
	}
	if len(cyTiles) != 3 || len(perRow) != 2 || most != 2 {
		t.Errorf("Cy (phone): %d tiles, %d rows, at most %d a row; want 3 tiles in two columns", len(cyTiles), len(perRow), most)
	}
	cy.checkControls(ctx, "grid")
	cy.shot(ctx, "grid-phone")

	// Bob shares his screen: large for Ann and Cy, not for Bob.
	if err := bob.B.Click(ctx, `[data-testid="screen-toggle"]`); err != nil {
		t.Fatal(err)
	}
	tiles = ann.waitMain(ctx, "Bob (screen)")
	main := findTile(tiles, "Bob (screen)")
	for _, tb := range tiles {
		if tb.Name != main.Name && (tb.Role != "strip" || tb.W*tb.H*4 > main.W*main.H) {
			t.Errorf("Ann: with Bob's screen large, %+v is not a small strip tile", tb)
		}
	}
	ann.checkControls(ctx, "stage")
	ann.shot(ctx, "stage")
	if ct := cy.waitMain(ctx, "Bob (screen)"); len(ct) != 4 {
		t.Errorf("Cy (phone): %d tiles shown with the screen large, want the screen and the three people", len(ct))
	}
	cy.checkControls(ctx, "stage")
	cy.shot(ctx, "stage-phone")
	if !poll(ctx, 10*time.Second, func() bool {
		bt, _ := bob.tileBoxes(ctx)
		own := findTile(bt, "Bob (you, screen)")
		return own != nil && own.Role != "main"
	}) {
		bt, _ := bob.tileBoxes(ctx)
		t.Errorf("Bob: his own screen is shown large: %+v", bt)
	}

	// Ann pins Cy: Cy is large instead.
	sel := ann.tileMenu(ctx, "Cy")
	if err := ann.B.Click(ctx, sel+` [data-testid="tile-pin"]`); err != nil {
		t.Fatal(err)
	}
	ann.waitMain(ctx, "Cy")
	ann.checkControls(ctx, "pinned")
	ann.shot(ctx, "pinned")

	// Bob's volume: the slider in his tile's menu sets his audio element's
	// volume (a click in its middle is 50 %), not Cy's.
	sel = ann.tileMenu(ctx, "Bob")
	if err := ann.B.Click(ctx, sel+` [data-testid="tile-volume"]`); err != nil {
		t.Fatal(err)
	}
	vols, err := Eval[map[string]float64](ctx, ann.B, `(() => {
		const out = {};
		for (const p of window.parley.state().participants) {
			const a = document.querySelector('[data-testid="remote-audio"][data-participant="' + p.sid + '"]');
			out[p.name] = a ? a.volume : -1;
		}
		return out;
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(vols["Bob"]-0.5) > 0.06 || vols["Cy"] != 1 {
		t.Errorf("Ann: audio volumes %v, want Bob about 0.5 and Cy 1", vols)
	}
	// Escape closes the menu.
	if err := chromedp.Do(ann.B.Context(), chromedp.KeyEvent("\x1b")); err != nil {
		t.Fatal(err)
	}
	ann.waitVisible(ctx, "tile-menu-panel", false)

	// Fullscreen of Bob's camera tile.
	sel = ann.tileMenu(ctx, "Bob")
	if err := ann.B.Click(ctx, sel+` [data-testid="tile-fullscreen"]`); err != nil {
		t.Fatal(err)
	}
	if !poll(ctx, 10*time.Second, func() bool {
		v, _ := Eval[string](ctx, ann.B, `document.fullscreenElement ? document.fullscreenElement.getAttribute('aria-label') : ''`)
		return v == "Bob"
	}) {
		t.Errorf("Ann: Bob's tile did not go fullscreen")
	}
	if _, err := Eval[bool](ctx, ann.B, `document.exitFullscreen().then(() => true)`); err != nil {
		t.Fatal(err)
	}

	// The layout menu: unpin, then Grid puts Bob's screen back in the grid.
	sel = ann.tileMenu(ctx, "Cy")
	if err := ann.B.Click(ctx, sel+` [data-testid="tile-pin"]`); err != nil {
		t.Fatal(err)
	}
	ann.waitMain(ctx, "Bob (screen)")
	if err := ann.B.Click(ctx, `[data-testid="layout-toggle"]`); err != nil {
		t.Fatal(err)
	}
	ann.shot(ctx, "layout-menu")
	if err := ann.B.Click(ctx, `[data-testid="layout-grid"]`); err != nil {
		t.Fatal(err)
	}
	if !poll(ctx, 10*time.Second, func() bool {
		tiles, _ = ann.tileBoxes(ctx)
		for _, tb := range tiles {
			if tb.Role != "grid" {
				return false
			}
		}
		return len(tiles) == 4
	}) {
		t.Errorf("Ann: grid layout chosen, tiles %+v", tiles)
	}
	if err := ann.B.Click(ctx, `[data-testid="layout-speaker"]`); err != nil {
		t.Fatal(err)
	}
	// No speaker known yet: the first other person is large.
	ann.waitMain(ctx, "Bob")
	if err := chromedp.Do(ann.B.Context(), chromedp.KeyEvent("\x1b")); err != nil {
		t.Fatal(err)
	}
	ann.waitVisible(ctx, "layout-menu", false)
	ann.checkControls(ctx, "speaker")
	ann.shot(ctx, "speaker")
}
