package grants

import (
	"strings"
	"testing"
	"time"
)

// maxMatchTime is far above what any match should take; hitting it means
// the matcher has gone super-linear.
const maxMatchTime = time.Second

// FuzzMatch checks that validation never panics and that the matcher, on
// the whole path and on the connector/name split, terminates quickly and
// agrees with the reference matcher.
func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"notion/*", "notion/search"},
		{"notion/**", "notion/a/b/c"},
		{"**", ""},
		{"**/x", "a/b/x"},
		{"a/**/z", "a/z/"},
		{"a//b", "a//b"},
		{"a/*-read", "a/x-read"},
		{"a/a*a", "a/a"},
		{"git/*", "github/x"},
		{"a/[!a]*", "a/[!a]b"},
		{`a/\*`, `a/\x`},
		{"a/caf\u00e9", "a/cafe\u0301"},
		{"internal/file:///data/**", "file:///data/../etc/passwd"},
		{"**/a/**/a/**/a/**/a/**/b", strings.Repeat("a/", 40) + "a"},
		{strings.Repeat("**/", 50) + "x", strings.Repeat("y/", 50)},
		{"a/" + strings.Repeat("*a", 30), "a/" + strings.Repeat("a", 60) + "b"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		_ = ValidatePattern(pat)
		p := compilePattern(pat)
		start := time.Now()
		got := matchSegs(p.segs, path)
		conn, name, split := strings.Cut(path, "/")
		gotSplit := split && p.matches(conn, name)
		if d := time.Since(start); d > maxMatchTime {
			t.Fatalf("matching %q against %q took %v", pat, path, d)
		}
		// The reference is quadratic in time and memory; skip it where that
		// would only slow the fuzzer down.
		if len(pat)*len(path) > 1<<20 {
			return
		}
		want := refMatch(pat, path)
		if got != want {
			t.Fatalf("matchSegs(%q, %q) = %v, reference says %v", pat, path, got, want)
		}
		if split && gotSplit != want {
			t.Fatalf("matches(%q, %q, %q) = %v, reference says %v", pat, conn, name, gotSplit, want)
		}
	})
}
