package connectors

import (
	"encoding/json"
	"strings"
	"testing"
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
