package mcpgate_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConnectorsPageProductInBrowser reads the Connectors page in a real
// headless Chromium as a person would: alice filters it by status with
// its links, connects notes through the real authorization server, reads
// its title, description, status label, account, scopes and tool count,
// and filters again; the page is drawn at desktop and phone widths, with
// its style applied (its CSP lets it) and no horizontal scroll on the
// phone.
func TestConnectorsPageProductInBrowser(t *testing.T) {
	s := startOAuthStack(t)
	// notes gets a title and a description, and asks for openid, so that
	// an ID token says whose account the connection is.
	config := strings.Replace(s.config, "connector notes {\n",
		"connector notes {\n\t\t\ttitle \"Team notes\"\n\t\t\tdescription \"Notes the whole team writes\"\n", 1)
	config = strings.Replace(config, "auth oauth {\n", "auth oauth {\n\t\t\t\tscopes \"openid mcp\"\n", 1)
	s.tester.InitServer(config, "caddyfile")
	ctx := startBrowser(t, basic("alice"))
	page := site + "/connectors"
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}

	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(page))
	mustLand(t, ctx, resp, err, page)
	mustShowCards(t, ctx, "notes", "team")
	mustShowStatus(t, ctx, "notes", "needs_auth")
	mustRead(t, ctx, "#connector-notes h2.title", "Team notes")
	mustRead(t, ctx, "#connector-notes .description", "Notes the whole team writes")
	mustRead(t, ctx, "#connector-notes span.status", "Needs auth")
	mustRead(t, ctx, "#connector-notes .hint", "Connect your account to use it.")
	mustRead(t, ctx, "#connector-team h2.title", "team")
	mustBeStyled(t, ctx)

	// The filter is links: following one shows its group's cards alone.
	filter(t, ctx, "active")
	mustShowCards(t, ctx)
	mustRead(t, ctx, "#empty", "No connector is in this group. Show all")
	filter(t, ctx, "inactive")
	mustShowCards(t, ctx, "notes", "team")

	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#connector-notes button.primary")))
	mustLand(t, ctx, resp, err, page+"?connected=notes")
	mustShowStatus(t, ctx, "notes", "ready")
	mustRead(t, ctx, "#connector-notes span.status", "Ready")
	mustRead(t, ctx, "#connector-notes h2.title", "Team notes")
	st := statusOf(t, "alice", "notes")
	account, _ := st["account"].(map[string]any)
	scopes := anyStrings(st["scopes"])
	if account["sub"] != "alice" || len(scopes) == 0 || st["tool_count"] == nil {
		t.Fatalf("GET /connectors after connecting: account %v, scopes %v, tool_count %v", account, scopes, st["tool_count"])
	}
	mustRead(t, ctx, "#connector-notes dd.account", "alice")
	mustRead(t, ctx, "#connector-notes dd.scopes", strings.Join(scopes, " "))
	mustRead(t, ctx, "#connector-notes dd.tools", fmt.Sprintf("%v available to you", st["tool_count"]))
	mustBeDrawn(t, screenshot(t, ctx, "product-desktop.png"), "the desktop page")

	filter(t, ctx, "active")
	mustShowCards(t, ctx, "notes")
	filter(t, ctx, "inactive")
	mustShowCards(t, ctx, "team")

	// Disabled by an admin, a connected connector is inactive, and says
	// that its connection waits.
	mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/notes", `{"enabled":false}`)
	resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(site+"/connectors?status=inactive"))
	mustLand(t, ctx, resp, err, site+"/connectors?status=inactive")
	mustShowCards(t, ctx, "notes", "team")
	mustShowStatus(t, ctx, "notes", "disabled")
	mustRead(t, ctx, "#connector-notes span.status", "Disabled")
	mustRead(t, ctx, "#connector-notes .hint", "An admin turned it off. Your connection is kept: it works again as soon as it is turned back on.")
	if buttons := buttonsOf(t, ctx, "notes"); !slices.Equal(buttons, []string{"disconnect"}) {
		t.Fatalf("the disabled notes card offers %v, want only disconnect", buttons)
	}
	mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/notes", `{"enabled":true}`)
	filter(t, ctx, "all")
	mustShowCards(t, ctx, "notes", "team")
	mustShowStatus(t, ctx, "notes", "ready")

	// A phone: the viewport meta gives a layout as wide as the screen,
	// which the cards fit without scrolling sideways.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(375, 812, chromedp.EmulatePortrait, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(page))
	mustLand(t, ctx, resp, err, page)
	mustFitWidth(t, ctx, 375)
	mustBeStyled(t, ctx)
	mustBeDrawn(t, screenshot(t, ctx, "product-phone.png"), "the phone page")
}

// filter follows the page's filter link of group, and checks where it
// landed and that the link is marked as the current one.
func filter(t *testing.T, ctx context.Context, group string) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("filter-"+group)))
	mustLand(t, ctx, resp, err, site+"/connectors?status="+group)
	current, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.filter a[aria-current="page"]').id`))
	if err != nil || current != "filter-"+group {
		t.Fatalf("after filtering by %s the current filter is %q (%v)", group, current, err)
	}
}

// mustShowCards fails unless the page shows the cards of exactly these
// connectors, in this order.
func mustShowCards(t *testing.T, ctx context.Context, want ...string) {
	t.Helper()
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('.cards > li')).map(li => li.id.replace(/^connector-/, ''))`))
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("the page shows the cards %v (%v), want %v", ids, err, want)
	}
}

// buttonsOf are the values of the buttons on connector's card.
func buttonsOf(t *testing.T, ctx context.Context, connector string) []string {
	t.Helper()
	values, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#connector-`+connector+` button')).map(b => b.value)`))
	if err != nil {
		t.Fatal(err)
	}
	return values
}

// mustRead fails unless the element css selects reads want.
func mustRead(t *testing.T, ctx context.Context, css, want string) {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil || strings.Join(strings.Fields(got), " ") != want {
		t.Fatalf("%s reads %q (%v), want %q", css, got, err, want)
	}
}

// mustBeStyled fails unless the page's style applies: the CSP names its
// hash, and a browser that refused it would draw bare square boxes.
func mustBeStyled(t *testing.T, ctx context.Context) {
	t.Helper()
	radius, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector('.cards > li')).borderTopLeftRadius`))
	if err != nil || radius == "" || radius == "0px" {
		t.Fatalf("the cards have no rounded corners (%q, %v): the page's style did not apply", radius, err)
	}
}

// mustFitWidth fails unless the page is laid out at the screen's width
// and nothing in it is wider.
func mustFitWidth(t *testing.T, ctx context.Context, width int) {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](
		`[window.innerWidth, document.documentElement.scrollWidth, Math.ceil(Math.max(...Array.from(document.querySelectorAll('body *')).map(e => e.getBoundingClientRect().right)))]`))
	if err != nil || len(got) != 3 {
		t.Fatalf("measuring the page: %v %v", got, err)
	}
	inner, scroll, right := got[0], got[1], got[2]
	if inner != width || scroll > inner || right > inner {
		t.Fatalf("at %d px: innerWidth %d, scrollWidth %d, rightmost element edge %d: the page scrolls sideways", width, inner, scroll, right)
	}
}

// mustBeDrawn fails unless a screenshot shows a page rather than a blank
// or a single colour: many colours (text is anti-aliased), and a good
// share of pixels other than the background, the commonest colour.
func mustBeDrawn(t *testing.T, shot []byte, what string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("%s: the screenshot is no PNG: %v", what, err)
	}
	colours, total, background := colourCounts(img)
	drawn := float64(total-background) / float64(total)
	if len(colours) < 32 || drawn < 0.02 {
		t.Fatalf("%s looks blank: %d colours, %.1f%% of %d pixels off the background", what, len(colours), 100*drawn, total)
	}
	t.Logf("%s: %dx%d, %d colours, %.1f%% off the background", what, img.Bounds().Dx(), img.Bounds().Dy(), len(colours), 100*drawn)
}

// colourCounts counts img's pixels by colour, and returns the counts, the
// number of pixels and that of the commonest colour.
func colourCounts(img image.Image) (map[[4]uint32]int, int, int) {
	counts := map[[4]uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			counts[[4]uint32{r, g, bl, a}]++
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	return counts, b.Dx() * b.Dy(), most
}
