package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// axePath is where scripts/test installs axe-core (npm package axe-core,
// MPL-2.0, not committed: e2e/testdata/axe is gitignored).
const axePath = "testdata/axe/node_modules/axe-core/axe.min.js"

// axeViolations injects axe-core into p's page and returns its serious
// and critical violations, one line each.
func (p *participant) axeViolations(ctx context.Context) []string {
	p.t.Helper()
	src, err := os.ReadFile(axePath)
	if err != nil {
		p.t.Fatalf("axe-core is missing (%v): run `npm install --prefix e2e/testdata/axe axe-core@4.14.1` (scripts/test does)", err)
	}
	if _, err := Eval[bool](ctx, p.B, string(src)+"\n;true"); err != nil {
		p.t.Fatalf("inject axe-core: %v", err)
	}
	v, err := Eval[[]string](ctx, p.B, `axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations
		.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' + v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(', ')))`)
	if err != nil {
		p.t.Fatalf("axe.run: %v", err)
	}
	return v
}

func (p *participant) assertAccessible(ctx context.Context, page string) {
	p.t.Helper()
	if v := p.axeViolations(ctx); len(v) > 0 {
		p.t.Errorf("%s: %d serious or critical accessibility violations on the %s page:\n%s", p.Name, len(v), page, strings.Join(v, "\n"))
	}
}

// TestUXAccessibility runs axe-core on the landing, pre-join, call, call
// chat and /chat pages at desktop and phone size: no serious or critical
// violation.
func TestUXAccessibility(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	for _, size := range []struct{ w, h int }{{1280, 800}, {390, 844}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			room := fmt.Sprintf("ux-a11y-%d", size.w)
			p := startSized(t, ctx, "Ida", size.w, size.h)
			if err := p.B.Navigate(ctx, srv.URL+"/"); err != nil {
				t.Fatal(err)
			}
			p.waitVisible(ctx, "landing", true)
			p.assertAccessible(ctx, "landing")
			if err := p.B.Navigate(ctx, srv.URL+"/r/"+room); err != nil {
				t.Fatal(err)
			}
			p.waitVisible(ctx, "prejoin", true)
			p.assertAccessible(ctx, "pre-join")
			p.joinAs(ctx, srv, room, "Ida")
			p.assertAccessible(ctx, "call")
			if !visible(ctx, p, "chat-panel") {
				if err := p.B.Click(ctx, `[data-testid="chat-toggle"]`); err != nil {
					t.Fatal(err)
				}
			}
			p.waitVisible(ctx, "composer-input", true)
			p.assertAccessible(ctx, "call with chat")

			c := openChatPage(t, ctx, srv, fmt.Sprintf("ida-%d", size.w), "Ida", BrowserOptions{Width: size.w, Height: size.h})
			c.assertAccessible(ctx, "/chat")
		})
	}
}
