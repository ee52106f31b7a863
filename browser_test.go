package mcpgate_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browserTimeout bounds everything the browser does in a test, so that a
// page that never loads fails the test instead of hanging CI.
const browserTimeout = 60 * time.Second

// TestConnectorsPageInBrowser drives the Connectors page in a real headless
// Chromium: alice connects notes with the page's plain HTML form, through
// the real authorization server and the callback, and disconnects it again.
func TestConnectorsPageInBrowser(t *testing.T) {
	startOAuthStack(t)
	ctx := startBrowser(t, basic("alice"))
	page := site + "/connectors"
	connect := chromedp.CSS("#connector-notes button.primary")

	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(page))
	mustLand(t, ctx, resp, err, page)
	mustShowStatus(t, ctx, "notes", "needs_auth")
	if label, err := chromedp.Run(ctx, chromedp.Text(connect)); err != nil || label != "Connect" {
		t.Fatalf("notes' primary button says %q (%v), want Connect", label, err)
	}

	// The form posts to the gateway, which sends the browser to the
	// authorization server; it logs alice in and sends the browser to the
	// callback, which sends it back to the page.
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(connect))
	mustLand(t, ctx, resp, err, page+"?connected=notes")
	if text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("banner"))); err != nil || text != "Connected notes." {
		t.Fatalf("the banner says %q (%v), want %q", text, err, "Connected notes.")
	}
	mustShowStatus(t, ctx, "notes", "ready")
	if st := statusOf(t, "alice", "notes"); st["state"] != "active" {
		t.Fatalf("alice's notes after connecting in the browser: %v", st)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after connecting in the browser")
	screenshot(t, ctx, "connected.png")

	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#connector-notes button[value="disconnect"]`)))
	mustLand(t, ctx, resp, err, page+"?disconnected=notes")
	mustShowStatus(t, ctx, "notes", "needs_auth")
	if st := statusOf(t, "alice", "notes"); st["state"] != "disconnected" {
		t.Fatalf("alice's notes after disconnecting in the browser: %v", st)
	}
	screenshot(t, ctx, "disconnected.png")
}

// startBrowser starts a headless Chromium with a fresh profile and returns
// the context of its tab, which sends authorization with every request:
// the site's basic_auth has no login page for a browser to fill in. The
// browser is closed when the test ends.
func startBrowser(t *testing.T, authorization string) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is missing: scripts/test installs it (Debian package chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// Nothing but loopback is reachable: no QUIC, no updates.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	// Not t.Context(): it ends before the cleanups run, and a browser
	// killed then cannot close its child processes.
	timeout, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		closeBrowser(t, ctx)
		cancelTab()
		cancelAlloc() // waits until the browser process has exited
		cancelTimeout()
	})
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": authorization},
		})
		return err
	})); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// closeBrowser closes the browser gracefully, so that it ends its child
// processes itself; the cancel funcs kill what is left.
func closeBrowser(t *testing.T, ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Cancel(ctx); err != nil && !t.Failed() {
		t.Errorf("closing chromium: %v", err)
	}
}

// mustLand fails unless a navigation ended with 200 at want, with the
// headers every page carries and no secret in the page.
func mustLand(t *testing.T, ctx context.Context, resp *network.Response, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("waiting for %s: %v", want, err)
	}
	if resp.URL != want || resp.Status != http.StatusOK {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("the browser landed on %s (%d), want %s:\n%s", resp.URL, resp.Status, want, body)
	}
	h := http.Header{}
	for k, v := range resp.Headers {
		h.Add(k, fmt.Sprint(v))
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("%s may be cached or framed: %v", want, h)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"access_token", "code=", "Bearer"} {
		if strings.Contains(html, secret) {
			t.Fatalf("%s contains %q:\n%s", want, secret, html)
		}
	}
}

// mustShowStatus fails unless the page shows the connector's status.
func mustShowStatus(t *testing.T, ctx context.Context, connector, want string) {
	t.Helper()
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#connector-"+connector+" span.status"), "data-status"))
	if err != nil || attr.Value != want {
		t.Fatalf("the page shows %s as %q (%v), want %q", connector, attr.Value, err, want)
	}
}

// screenshot saves the page as name in the test's artifact directory,
// which go test -artifacts keeps, and returns the PNG for the test to
// look at.
func screenshot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return png
}
