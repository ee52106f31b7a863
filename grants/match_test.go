package grants

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMatch covers the glob's edge cases: a pattern matches whole segments
// only (notion/* never covers notion-internal/x), only '*' is special, and
// bytes are compared exactly, with no case or Unicode folding. Each case is
// checked on the whole path, on the connector/name split that Decide uses,
// and against the reference matcher.
func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		// Empty segments are real segments.
		{"a/b", "a/b", true},
		{"a//b", "a//b", true},
		{"a//b", "a/b", false},
		{"a/b", "a//b", false},
		{"a/*/b", "a//b", true},
		{"a/**/b", "a//b", true},
		{"a/*", "a/", true},
		// Trailing '/': "notion/" names the item with the empty name.
		{"notion/", "notion/", true},
		{"notion/", "notion/x", false},
		{"notion/*", "notion/", true},
		{"notion/*", "notion/x", true},
		{"notion/*", "notion/x/y", false},
		{"notion/*", "notion", false},
		{"notion/**", "notion/", true},
		{"notion/**", "notion/x/y", true},
		// "**" matches zero or more segments, so "a/**" matches the bare
		// path "a" too; Decide's paths always have a name segment, so this
		// only shows in the matcher.
		{"a/**", "a", true},
		{"a/**", "a/x", true},
		{"a/**", "a/x/y", true},
		{"a/**", "b/x", false},
		{"**", "a", true},
		{"**", "", true},
		{"**", "a/b/c", true},
		{"**/x", "x", true},
		{"**/x", "a/x", true},
		{"**/x", "a/b/x", true},
		{"**/x", "a/x/y", false},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/b/c/z", true},
		{"a/**/z", "a/b/c", false},
		{"a/**/z", "a/z/", false},
		{"**/**/**", "x", true},
		{"**/a/**/a/**/b", "a/a/a/a/a/a/a/a", false},
		{"**/a/**/a/**/b", "x/a/y/a/b", true},
		// Stars within a segment.
		{"a/search*", "a/search", true},
		{"a/search*", "a/searching", true},
		{"a/search*", "a/research", false},
		{"a/*-read", "a/x-read", true},
		{"a/*-read", "a/-read", true},
		{"a/*-read", "a/x-reads", false},
		{"a/a*a", "a/a", false},
		{"a/a*a", "a/aa", true},
		{"a/*b*c*", "a/xbycz", true},
		{"a/*b*c*", "a/xcyb", false},
		{"*/x", "anything/x", true},
		{"*/x", "a/b/x", false},
		// Case and Unicode compare byte for byte.
		{"notion/search", "Notion/search", false},
		{"notion/Search", "notion/search", false},
		{"a/caf\u00e9", "a/cafe\u0301", false},
		{"a/cafe\u0301", "a/cafe\u0301", true},
		{"a/bo", "a/b\u043e", false},
		{"a/x", "a/x\u200b", false},
		{"a/*", "a/x\u200b", true},
		{"a/search", "a/\uff53earch", false},
		{"a/secret", "a/\u017fecret", false},
		{"a/*cret", "a/\u017fecret", true},
		{"a/K", "a/\u212a", false},
		{"a/x\u202eyz", "a/x\u202eyz", true},
		// Only '*' is special: ?, [, ], \ are literal.
		{"a/?", "a/x", false},
		{"a/?", "a/?", true},
		{"a/[a]", "a/a", false},
		{"a/[a]", "a/[a]", true},
		{"a/[!a]*", "a/b", false},
		{"a/[!a]*", "a/[!a]b", true},
		{`a/\*`, `a/\x`, true},
		{`a/\*`, "a/*", false},
		{"a/[", "a/[", true},
		{"a/*", "a/*", true},
		// A connector that is a prefix of another never matches.
		{"git/*", "github/x", false},
		{"notion/*", "notion-internal/x", false},
		{"notion/**", "notion-internal/x", false},
		{"notion/search*", "notion-admin/search", false},
		{"notion-*/x", "notion-internal/x", true},
		{"notion-*/x", "notion/x", false},
		// Names with '/' have more segments.
		{"a/*", "a/x/y", false},
		{"a/x/*", "a/x/y", true},
		{"a/*/*", "a/x/y", true},
	}
	for _, tt := range tests {
		p := compilePattern(tt.pattern)
		if got := matchSegs(p.segs, tt.path); got != tt.want {
			t.Errorf("matchSegs(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
		if ref := refMatch(tt.pattern, tt.path); ref != tt.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v", tt.pattern, tt.path, ref, tt.want)
		}
		if conn, name, ok := strings.Cut(tt.path, "/"); ok {
			if got := p.matches(conn, name); got != tt.want {
				t.Errorf("matches(%q, %q, %q) = %v, want %v", tt.pattern, conn, name, got, tt.want)
			}
		}
	}
}

// TestMatchAgainstReference checks the matcher against refMatch on random
// patterns and paths drawn from a small alphabet, so that the two often
// meet.
func TestMatchAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	segs := []string{"**", "*", "a", "b", "", "a*", "*b", "a*b", "*a*", "é", "-"}
	for range 50000 {
		pat := randomJoin(rng, segs, 1+rng.IntN(5))
		path := randomJoin(rng, []string{"a", "b", "", "ab", "ba", "aab", "é", "*", "-"}, 1+rng.IntN(6))
		p := compilePattern(pat)
		want := refMatch(pat, path)
		if got := matchSegs(p.segs, path); got != want {
			t.Fatalf("matchSegs(%q, %q) = %v, reference says %v", pat, path, got, want)
		}
		if conn, name, ok := strings.Cut(path, "/"); ok && p.matches(conn, name) != want {
			t.Fatalf("matches(%q, %q, %q) = %v, reference says %v", pat, conn, name, !want, want)
		}
	}
}

// randomJoin joins n random picks from parts with '/'.
func randomJoin(rng *rand.Rand, parts []string, n int) string {
	picked := make([]string, n)
	for i := range picked {
		picked[i] = parts[rng.IntN(len(parts))]
	}
	return strings.Join(picked, "/")
}

// TestMatchAllocs checks that matching allocates nothing.
func TestMatchAllocs(t *testing.T) {
	p := compilePattern("**/a/*-x/**/b*c")
	allocs := testing.AllocsPerRun(100, func() {
		p.matches("conn", "a/y-x/q/r/bzc")
	})
	if allocs != 0 {
		t.Errorf("matches allocates %v times per run, want 0", allocs)
	}
}
