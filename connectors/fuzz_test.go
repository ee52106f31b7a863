package connectors

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDuration decodes arbitrary JSON as a config Duration, as a Caddy
// config is read: it must never panic nor hang, however long the input,
// a duration string over the length cap is refused, and a duration it
// accepts encodes as nanoseconds that decode to the same duration.
func FuzzDuration(f *testing.F) {
	for _, seed := range []string{
		`"30s"`, `"1h30m"`, `"1.5d2h"`, `"-2d"`, `30000000000`, `-1`, `null`, `""`, `"d"`, `"1.d"`, `1e400`, `"\u0033s"`,
		`"` + strings.Repeat("9", 400) + `d"`,
		`"` + strings.Repeat("1d", 512) + `"`,
		`"` + strings.Repeat("1.", 5000) + `d"`,
		strings.Repeat("9", 100000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Duration
		err := json.Unmarshal(b, &d)
		if s, ok := strings.CutPrefix(string(b), `"`); ok && len(s) > 1025 && err == nil {
			t.Fatalf("a duration string of %d bytes was accepted", len(s))
		}
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("encoding %d: %v", d, err)
		}
		var back Duration
		if err := json.Unmarshal(out, &back); err != nil || back != d {
			t.Fatalf("%q decodes to %d, which encodes as %s and decodes to %d, %v", b, d, out, back, err)
		}
	})
}

// FuzzUpdatePatch applies arbitrary bytes as a PATCH to a runtime
// connector: every input is refused with an error or yields a connector
// that builds, the id never changes, and nothing panics.
func FuzzUpdatePatch(f *testing.F) {
	for _, seed := range []string{
		`{"title":"Wiki"}`, `{"url":"https://b.example/mcp"}`, `{"enabled":false}`, `{"auth":null}`,
		`{"auth":{"type":"oauth","oauth":{"scopes":"a, b\nc","client_name":"x"}}}`, `{"id":"other"}`,
		`{"tools":{"operations":{"t":"read"}}}`, `[]`, `null`, `{"a":1,"a":2}`, `{"url":"{env.X}"}`,
	} {
		f.Add([]byte(seed))
	}
	sealed, _ := sealedMemory(f)
	r := reopen(f, Options{}, sealed)
	ctx := context.Background()
	if _, err := r.Add(ctx, AddRequest{Config: Config{ID: "wiki", URL: "https://a.example/mcp"}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, patch []byte) {
		p, err := parsePatch(patch)
		if err != nil {
			return
		}
		old, _ := r.Snapshot().Entry("wiki")
		next, err := r.patched(old, p, time.Now())
		if err != nil {
			return
		}
		if next.Config.ID != "wiki" {
			t.Fatalf("the patch %q changed the id to %q", patch, next.Config.ID)
		}
		if _, err := next.Config.Build(); err != nil {
			t.Fatalf("the patch %q was taken, but the connector does not build: %v", patch, err)
		}
	})
}
