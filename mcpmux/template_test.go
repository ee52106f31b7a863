package mcpmux

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// backtrackMatch is the template matcher mcpgate had before: correct, but
// exponential in the number of adjacent expressions and quadratic in the
// URI's length for two. It is kept as the reference the fuzz target and
// the table test hold the new matcher to, on inputs small enough for it.
func backtrackMatch(tmpl, uri string) bool {
	open := strings.IndexByte(tmpl, '{')
	if open < 0 {
		return tmpl == uri
	}
	if !strings.HasPrefix(uri, tmpl[:open]) {
		return false
	}
	end := strings.IndexByte(tmpl[open:], '}')
	if end < 0 {
		return false
	}
	expr, rest, uri := tmpl[open+1:open+end], tmpl[open+end+1:], uri[open:]
	simple := expr == "" || !strings.ContainsRune("+#./;?&", rune(expr[0]))
	for i := 0; i <= len(uri); i++ {
		if backtrackMatch(rest, uri[i:]) {
			return true
		}
		if i < len(uri) && simple && strings.IndexByte("/?#", uri[i]) >= 0 {
			return false
		}
	}
	return false
}

// matchTemplate matches uri against tmpl with a fresh matcher, and returns
// the steps it took.
func matchTemplate(ctx context.Context, tmpl, uri string) (bool, int, error) {
	m := templateMatcher{ctx: ctx}
	ok, err := m.match(tmpl, uri)
	return ok, m.steps, err
}

// stepBound is the most steps a match may take: two passes over the URI
// for each run of adjacent expressions.
func stepBound(tmpl, uri string) int {
	p, _ := compileTemplate(tmpl)
	return 2 * (len(uri) + 1) * len(p.parts)
}

// TestMatchTemplate checks the matcher's semantics case by case, each
// against the old backtracking matcher too.
func TestMatchTemplate(t *testing.T) {
	tests := []struct {
		tmpl, uri string
		want      bool
	}{
		// Literal templates match themselves only.
		{"test://a/readme", "test://a/readme", true},
		{"test://a/readme", "test://a/readm", false},
		{"test://a/readme", "test://a/readme2", false},
		{"", "", true},
		{"", "x", false},
		// A simple expression: any text without '/', '?' or '#', the
		// empty text included.
		{"test://a/items/{id}", "test://a/items/7", true},
		{"test://a/items/{id}", "test://a/items/", true},
		{"test://a/items/{id}", "test://a/items/7/8", false},
		{"test://a/items/{id}", "test://a/items/7?x", false},
		{"test://a/items/{id}", "test://a/items/7#x", false},
		{"test://a/items/{id}", "test://a/item/7", false},
		{"test://a/items/{id}/x", "test://a/items/7/x", true},
		{"test://a/items/{id}/x", "test://a/items/7/y/x", false},
		{"a{}b", "ab", true},
		{"a{}b", "a/b", false},
		{"{}", "", true},
		{"a{=q}", "a/b", false},
		{"a{=q}", "a=b", true},
		// The other operators: any text, across slashes.
		{"file:///{+path}", "file:///a/b/c", true},
		{"file:///{+path}", "file:///", true},
		{"file:///r/{+dir}/{+file}.txt", "file:///r/a/b/c.txt", true},
		{"file:///r/{+dir}/{+file}.txt", "file:///r//.txt", true},
		{"file:///r/{+dir}/{+file}.txt", "file:///r/a.txt", false},
		{"file:///r/{+dir}/{+file}.txt", "file:///r/a/b.txt2", false},
		{"a{#f}", "a#x/y", true},
		{"a{.x}", "a.b/c", true},
		{"a{/s}", "a/b/c", true},
		{"a{;p}", "a;x=1/2", true},
		{"a{?q}", "a?x=1&y/2", true},
		{"a{&r}", "a&x=1/2", true},
		// Adjacent expressions are one, of the wider kind.
		{"{a}{b}{c}", "abc", true},
		{"{a}{b}{c}", "", true},
		{"{a}{b}{c}", "a/b", false},
		{"{a}{+b}", "a/b", true},
		{"{+a}{b}", "a/b", true},
		{"{a}{b}/{c}{d}", "ab/cd", true},
		{"{a}{b}/{c}{d}", "ab/c/d", false},
		// Where an expansion ends is a choice the matcher must get right.
		{"x{a}y{b}z", "xyz", true},
		{"x{a}/{b}", "x1/2/3", false},
		{"x{+a}/{b}", "x1/2/3", true},
		{"{+a}/{b}", "x/y/z", true},
		{"{a}aab{b}", "aaab", true},
		{"{a}aab{b}", "aaa/ab", false},
		{"{+a}aab{b}", "aaa/aab", true},
		{"{a}ab{b}ab", "abab", true},
		{"{a}ab{b}ab", "ab", false},
		{"{a}x{b}x{c}", "xx", true},
		{"{a}x{b}x{c}", "x/x", false},
		// A '{' that no '}' closes: the template matches nothing.
		{"a{b", "a{b", false},
		{"a{b}c{d", "axc{d", false},
		{"{", "{", false},
		// A '}' before any '{' is literal; a '{' inside an expression is
		// part of it.
		{"a}{b}", "a}x", true},
		{"a}{b}", "ax", false},
		{"a{b{c}d", "axd", true},
		{"a{+b{c}d", "ax/d", true},
	}
	for _, tt := range tests {
		got, steps, err := matchTemplate(context.Background(), tt.tmpl, tt.uri)
		if err != nil || got != tt.want {
			t.Errorf("match(%q, %q) = %v, %v; want %v", tt.tmpl, tt.uri, got, err, tt.want)
		}
		if old := backtrackMatch(tt.tmpl, tt.uri); old != tt.want {
			t.Errorf("the old matcher says %v for (%q, %q)", old, tt.tmpl, tt.uri)
		}
		if steps > stepBound(tt.tmpl, tt.uri) {
			t.Errorf("match(%q, %q) took %d steps", tt.tmpl, tt.uri, steps)
		}
	}
}

// adversarial are inputs that took the old matcher seconds to minutes:
// two wide expressions over a long run of slashes, a dozen adjacent
// expressions, and templates as long as allowed against URIs as long as
// allowed.
func adversarial() []struct{ name, tmpl, uri string } {
	slashes := strings.Repeat("/", maxURILen-len("file:///r/")-len(".txt"))
	return []struct{ name, tmpl, uri string }{
		{"slashes", "file:///r/{+dir}/{+file}.txt", "file:///r/" + slashes + ".txt"},
		{"slashes-fail", "file:///r/{+dir}/x{+file}.txt", "file:///r/" + slashes + ".txt"},
		{"slashes-simple-fail", "file:///r/{a}/{b}/{c}.txt", "file:///r/" + slashes + ".txt"},
		{"adjacent", "{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}/", strings.Repeat("a", 23) + "/"},
		{"adjacent-fail", "{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}x", strings.Repeat("a", 22) + "/x"},
		{"most", strings.Repeat("{a}x", maxExpressions), strings.Repeat("x", maxURILen)},
		{"most-wide", strings.Repeat("{+a}x", maxExpressions), "/" + strings.Repeat("x", maxURILen-1)},
		{"longest", strings.Repeat("{a}"+strings.Repeat("x", maxTemplateLen/maxExpressions-3), maxExpressions), strings.Repeat("x", maxURILen)},
		{"periodic", "{+a}" + strings.Repeat("a", maxTemplateLen-8) + "b{b}", strings.Repeat("a", maxURILen)},
	}
}

// TestMatchTemplateLinear checks that the inputs that took the old matcher
// 18 s and more take a number of steps linear in the URI's length for each
// run of expressions, and a moment of wall time.
func TestMatchTemplateLinear(t *testing.T) {
	for _, tt := range adversarial() {
		start := time.Now()
		got, steps, err := matchTemplate(context.Background(), tt.tmpl, tt.uri)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if steps > stepBound(tt.tmpl, tt.uri) {
			t.Errorf("%s: %d steps, over %d", tt.name, steps, stepBound(tt.tmpl, tt.uri))
		}
		// The step bound is the check; this one only says the steps are
		// cheap. The old matcher took seconds to minutes for each of
		// these, this one a fraction of a second on a loaded machine
		// under the race detector.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: took %v", tt.name, d)
		}
		want := !strings.HasSuffix(tt.name, "-fail") && tt.name != "periodic"
		if got != want {
			t.Errorf("%s: match = %v, want %v", tt.name, got, want)
		}
	}
}

// TestMatchTemplateLimits checks the caps: a URI over maxURILen is an
// error naming the limit, a template over maxTemplateLen or with more than
// maxExpressions matches nothing, and all at their caps still match.
func TestMatchTemplateLimits(t *testing.T) {
	ctx := context.Background()
	long := "file:///r/" + strings.Repeat("/", 80000)
	if ok, steps, err := matchTemplate(ctx, "file:///r/{+dir}/{+file}.txt", long); ok || !errors.Is(err, errURITooLong) || steps != 0 {
		t.Errorf("an 80,000-slash URI: %v, %v after %d steps", ok, err, steps)
	}
	if !strings.Contains(errURITooLong.Error(), "16384 bytes") {
		t.Errorf("the error does not name the limit: %v", errURITooLong)
	}
	atCap := "x:" + strings.Repeat("a", maxURILen-2)
	if ok, _, err := matchTemplate(ctx, "x:{id}", atCap); !ok || err != nil {
		t.Errorf("a URI of %d bytes: %v, %v", len(atCap), ok, err)
	}
	if ok, _, err := matchTemplate(ctx, "x:{id}", atCap+"a"); ok || !errors.Is(err, errURITooLong) {
		t.Errorf("a URI of %d bytes: %v, %v", len(atCap)+1, ok, err)
	}
	tmpl := "x:" + strings.Repeat("a", maxTemplateLen-6) + "{id}"
	if ok, _, err := matchTemplate(ctx, tmpl, "x:"+strings.Repeat("a", maxTemplateLen-6)+"7"); !ok || err != nil {
		t.Errorf("a template of %d bytes: %v, %v", len(tmpl), ok, err)
	}
	tmpl = "x:" + strings.Repeat("a", maxTemplateLen-5) + "{id}"
	if ok, _, err := matchTemplate(ctx, tmpl, "x:"+strings.Repeat("a", maxTemplateLen-5)+"7"); ok || err != nil {
		t.Errorf("a template of %d bytes: %v, %v", len(tmpl), ok, err)
	}
	tmpl = strings.Repeat("/{a}", maxExpressions)
	if ok, _, err := matchTemplate(ctx, tmpl, strings.Repeat("/a", maxExpressions)); !ok || err != nil {
		t.Errorf("a template of %d expressions: %v, %v", maxExpressions, ok, err)
	}
	if ok, _, err := matchTemplate(ctx, tmpl+"/{a}", strings.Repeat("/a", maxExpressions+1)); ok || err != nil {
		t.Errorf("a template of %d expressions: %v, %v", maxExpressions+1, ok, err)
	}
}

// TestMatchTemplateCancel checks that matching stops when the request's
// context ends: a cancelled context stops the longest match after one
// pass over the URI, and every later template at once.
func TestMatchTemplateCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tmpl, uri := strings.Repeat("{a}x", maxExpressions), strings.Repeat("x", maxURILen)
	m := templateMatcher{ctx: ctx}
	if ok, err := m.match(tmpl, uri); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("match = %v, %v", ok, err)
	}
	if m.steps > checkEvery+len(uri)+1 {
		t.Errorf("a cancelled match took %d steps", m.steps)
	}
	steps := m.steps
	if ok, err := m.match("x{a}", "xx"); ok || !errors.Is(err, context.Canceled) || m.steps != steps {
		t.Errorf("the next template: %v, %v after %d more steps", ok, err, m.steps-steps)
	}

	// With a live context, a long match looks at it every checkEvery
	// steps or so: cancelled midway, it stops well before the end.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	m = templateMatcher{}
	stop := &cancelAfter{Context: ctx, cancel: cancel, m: &m, at: 3 * maxURILen}
	m.ctx = stop
	if ok, err := m.match(tmpl, uri); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("match cancelled midway = %v, %v", ok, err)
	}
	if full := stepBound(tmpl, uri) / 2; m.steps > stop.at+checkEvery+len(uri)+1 || m.steps >= full {
		t.Errorf("a match cancelled after %d steps ran %d (a full one runs about %d)", stop.at, m.steps, full)
	}
}

// cancelAfter is a context that cancels itself once the matcher has taken
// at steps: the caller hanging up in the middle of a match.
type cancelAfter struct {
	context.Context
	cancel context.CancelFunc
	m      *templateMatcher
	at     int
}

// Err cancels the context once enough steps have run, then reports it.
func (c *cancelAfter) Err() error {
	if c.m.steps >= c.at {
		c.cancel()
	}
	return c.Context.Err()
}

// BenchmarkMatchTemplate measures a typical read against a typical
// template, and the adversarial inputs.
func BenchmarkMatchTemplate(b *testing.B) {
	cases := append([]struct{ name, tmpl, uri string }{
		{"typical", "test://a/items/{id}", "test://a/items/12345"},
		{"typical-miss", "file:///data/{+path}", "test://a/items/12345"},
	}, adversarial()...)
	for _, tt := range cases {
		b.Run(tt.name, func(b *testing.B) {
			m := templateMatcher{ctx: context.Background()}
			b.SetBytes(int64(len(tt.uri)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.match(tt.tmpl, tt.uri); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMatchTemplateBudget checks that one read's matching stops once its
// work over every template tried passes maxMatchSteps, however many
// templates the upstreams list, and that the refusal says how to narrow
// the read.
func TestMatchTemplateBudget(t *testing.T) {
	tmpl, uri := strings.Repeat("{a}x", maxExpressions), strings.Repeat("x", maxURILen)
	m := templateMatcher{ctx: context.Background()}
	var err error
	tried := 0
	for ; tried < 100 && err == nil; tried++ {
		_, err = m.match(tmpl, uri)
	}
	if !errors.Is(err, errMatchBudget) || !strings.Contains(err.Error(), "mcpgate://<connector>/<uri>") {
		t.Fatalf("after %d templates: %v", tried, err)
	}
	if m.steps > maxMatchSteps+len(uri)+1 {
		t.Errorf("matching ran %d steps, past the budget of %d", m.steps, maxMatchSteps)
	}
	if _, again := m.match("x", "x"); !errors.Is(again, errMatchBudget) {
		t.Errorf("a template after the budget ran out: %v", again)
	}
}
