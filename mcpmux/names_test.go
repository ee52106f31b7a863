package mcpmux

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestNamesRoundTrip checks that two tools never share a wire name: for
// every valid connector id and any tool name, splitting the joined name
// gives both back, with either separator, and a shortened name is short,
// valid UTF-8 and stable.
func TestNamesRoundTrip(t *testing.T) {
	ids := []string{"a", "git", "github", "notion-internal", "0day", strings.Repeat("z", 32)}
	alphabet := []string{"_", "__", "-", ".", "/", "a", "B", "é", "日", " ", "*"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sep := range []string{"_", "__"} {
		n := names{sep: sep}
		for i := 0; i < 20000; i++ {
			id := ids[rng.IntN(len(ids))]
			var b strings.Builder
			for j := rng.IntN(40); j > 0; j-- {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			name := b.String()
			wire := n.wire(id, name)
			if len(wire) > maxNameLen || !utf8.ValidString(wire) || wire != n.wire(id, name) {
				t.Fatalf("wire(%q, %q) = %q", id, name, wire)
			}
			if c, ok := n.connector(wire); !ok || c != id {
				t.Fatalf("connector(%q) = %q, %v; want %q", wire, c, ok, id)
			}
			if len(id)+len(sep)+len(name) > maxNameLen {
				continue
			}
			if got := wire[len(id)+len(sep):]; got != name {
				t.Fatalf("%q names %q after its connector, want %q", wire, got, name)
			}
		}
	}
}

func TestNamesRefuse(t *testing.T) {
	for _, tt := range []struct{ sep, wire string }{
		{"_", "noseparator"}, {"_", "_leading"}, {"__", "a_single"}, {"_", ""},
	} {
		if c, ok := (names{sep: tt.sep}).connector(tt.wire); ok {
			t.Errorf("connector(%q) with %q = %q", tt.wire, tt.sep, c)
		}
	}
}
