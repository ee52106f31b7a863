package mcpmux

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Limits on matching a resources/read URI against URI templates. Every
// visible connector's templates are tried before the grant check, so the
// work must stay bounded whatever an agent sends and whatever an upstream
// lists.
const (
	// maxURILen caps a resources/read URI, in bytes. 16 KiB is twice the
	// request line most HTTP servers accept (nginx and Apache stop at
	// 8 KiB) and far beyond any resource URI; with maxExpressions it
	// bounds one template match to about a million simple steps.
	maxURILen = 16 << 10
	// maxTemplateLen caps a URI template that reads are matched against,
	// in bytes, and maxExpressions the expressions in it. RFC 6570 sets no
	// limit; real templates are a few dozen bytes with a few expressions.
	// Matching costs two passes over the URI for each run of expressions.
	maxTemplateLen = 1 << 10
	maxExpressions = 32
	// checkEvery is how many steps of matching may run between two looks
	// at the request's context, so that a caller who hangs up stops the
	// work.
	checkEvery = 4 << 10
	// maxMatchSteps bounds the work of matching one read's URI against
	// every template in scope, which an upstream could otherwise multiply
	// by listing many: 16 times the worst single template, and hundreds of
	// times what a thousand realistic templates cost.
	maxMatchSteps = 1 << 24
)

// errURITooLong refuses a URI over maxURILen.
var errURITooLong = fmt.Errorf("params.uri is longer than %d bytes", maxURILen)

// errMatchBudget refuses a read whose URI took more than maxMatchSteps to
// match against the templates in scope. Naming the connector narrows the
// scope to its templates.
var errMatchBudget = errors.New("params.uri took too much work to match against the URI templates of every connector in scope: name its connector, as mcpgate://<connector>/<uri>")

// operators are the RFC 6570 operators (section 2.2) whose expansions may
// hold '/', '?' or '#'. A simple expression ({id}), like one with the
// reserved operators "=,!@|", stands for text without them.
const operators = "+#./;?&"

// isDelimiter reports whether a simple expression's expansion can hold c:
// '/', '?' and '#' would end the path segment it stands for.
func isDelimiter(c byte) bool {
	return c == '/' || c == '?' || c == '#'
}

// pattern is a URI template compiled for matching: the literal text before
// the first expression, then one part for each run of expressions.
type pattern struct {
	head  string
	parts []part
	exprs int // expressions, before adjacent ones are merged
}

// part is a run of adjacent expressions and the literal text after it, up
// to the next expression. Adjacent expressions are one: their expansions
// together are any text their kinds allow, so "{a}{b}" is "{a}" and
// "{a}{+b}" is "{+b}". That is what keeps "{a}{b}...{l}" from costing a
// power of the URI's length.
type part struct {
	wide bool   // an expansion may hold '/', '?' and '#'
	tail string // never empty but in the last part
	fail []int  // tail's Knuth–Morris–Pratt failure function
}

// compileTemplate compiles tmpl, or reports false for a template that
// never matches: one longer than maxTemplateLen, with more than
// maxExpressions expressions, or with a '{' that no '}' closes. Text before the first '{' and between a '}' and the next '{' is
// literal, a stray '}' included.
func compileTemplate(tmpl string) (pattern, bool) {
	if len(tmpl) > maxTemplateLen {
		return pattern{}, false
	}
	open := strings.IndexByte(tmpl, '{')
	if open < 0 {
		return pattern{head: tmpl}, true
	}
	p := pattern{head: tmpl[:open]}
	for rest := tmpl[open:]; rest != ""; {
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return pattern{}, false
		}
		expr := rest[1:end]
		wide := expr != "" && strings.IndexByte(operators, expr[0]) >= 0
		tail := rest[end+1:]
		rest = ""
		if next := strings.IndexByte(tail, '{'); next >= 0 {
			tail, rest = tail[:next], tail[next:]
		}
		if p.add(wide, tail) > maxExpressions {
			return pattern{}, false
		}
	}
	for i := range p.parts {
		p.parts[i].fail = kmpTable(p.parts[i].tail)
	}
	return p, true
}

// add appends an expression and the literal after it, merging it into the
// previous expression when no literal stands between them. It returns how
// many expressions p has.
func (p *pattern) add(wide bool, tail string) int {
	p.exprs++
	if n := len(p.parts); n > 0 && p.parts[n-1].tail == "" {
		p.parts[n-1].wide = p.parts[n-1].wide || wide
		p.parts[n-1].tail = tail
		return p.exprs
	}
	p.parts = append(p.parts, part{wide: wide, tail: tail})
	return p.exprs
}

// kmpTable returns the Knuth–Morris–Pratt failure function of s: for each
// prefix, the length of its longest proper prefix that is also its suffix.
func kmpTable(s string) []int {
	f := make([]int, len(s))
	for i, k := 1, 0; i < len(s); i++ {
		for k > 0 && s[i] != s[k] {
			k = f[k-1]
		}
		if s[i] == s[k] {
			k++
		}
		f[i] = k
	}
	return f
}

// templateMatcher matches one URI against URI templates with two passes
// over the URI for each run of expressions, so O(len(uri) x
// maxExpressions) at worst; backtracking over where each expansion ends
// took time exponential in the number of expressions. It keeps its
// buffers from one template to the next, and stops when ctx ends.
type templateMatcher struct {
	ctx   context.Context
	steps int // positions of the URI visited, to bound the work in tests
	next  int // steps at which ctx is next looked at
	err   error
	reach []bool
	spare []bool
}

// match reports whether uri is an expansion of the RFC 6570 URI template
// tmpl. A simple expression ({id}) stands for text without '/', '?' or '#';
// the other operators ({+path}, {/seg}, {?q} ...) for any text. That is
// enough to route a read to the template's connector; the upstream checks
// the values itself. A template that compileTemplate refuses matches
// nothing, as an MCP client would see it: listed, but with no URI that
// reads through it. match fails with errURITooLong for a URI over
// maxURILen, and with the context's error once it ends.
func (m *templateMatcher) match(tmpl, uri string) (bool, error) {
	if len(uri) > maxURILen {
		return false, errURITooLong
	}
	if m.err != nil {
		return false, m.err
	}
	p, ok := compileTemplate(tmpl)
	rest, found := strings.CutPrefix(uri, p.head)
	if !ok || !found {
		return false, nil
	}
	if len(p.parts) == 0 {
		return rest == "", nil
	}
	if !p.fits(rest) {
		return false, nil
	}
	return m.run(p.parts, rest)
}

// fits is a quick test that rest could be what follows the head: long
// enough for every literal, and ending with the last.
func (p *pattern) fits(rest string) bool {
	need := 0
	for i := range p.parts {
		need += len(p.parts[i].tail)
	}
	return need <= len(rest) && strings.HasSuffix(rest, p.parts[len(p.parts)-1].tail)
}

// run matches rest against parts, keeping the set of positions in rest
// where the text so far can end: each expression widens it, each literal
// moves it past the literal's occurrences.
func (m *templateMatcher) run(parts []part, rest string) (bool, error) {
	reach, spare := m.buffers(len(rest) + 1)
	reach[0] = true
	for i := range parts {
		extend(reach, rest, parts[i].wide)
		if err := m.count(len(rest)); err != nil {
			return false, err
		}
		if i == len(parts)-1 {
			return reach[len(rest)-len(parts[i].tail)], nil
		}
		ok := follow(spare, reach, rest, &parts[i])
		reach, spare = spare, reach
		if err := m.count(len(rest)); err != nil || !ok {
			return false, err
		}
	}
	return false, nil // unreachable: the last part returns
}

// buffers returns two cleared position sets of length n, reusing m's.
func (m *templateMatcher) buffers(n int) (reach, spare []bool) {
	if cap(m.reach) < n {
		m.reach, m.spare = make([]bool, n), make([]bool, n)
	}
	m.reach, m.spare = m.reach[:n], m.spare[:n]
	clear(m.reach)
	return m.reach, m.spare
}

// count records n steps of work, and looks at the context whenever
// checkEvery more have run.
func (m *templateMatcher) count(n int) error {
	m.steps += n + 1
	if m.steps > maxMatchSteps {
		m.err = errMatchBudget
		return m.err
	}
	if m.steps < m.next {
		return nil
	}
	m.next = m.steps + checkEvery
	m.err = m.ctx.Err()
	return m.err
}

// extend adds to reach every position an expression's expansion can run
// to from one already in it: any later position, or for a simple
// expression one with no delimiter in between.
func extend(reach []bool, s string, wide bool) {
	for i := 1; i < len(reach); i++ {
		reach[i] = reach[i] || reach[i-1] && (wide || !isDelimiter(s[i-1]))
	}
}

// follow sets in next the ends of the occurrences of pt's literal in s that
// start at a position in reach, and reports whether there are any. It
// scans s once from the first position in reach (Knuth–Morris–Pratt),
// however the literal repeats itself, skipping ahead to the literal's
// first byte whenever no prefix of it is pending.
func follow(next, reach []bool, s string, pt *part) bool {
	clear(next)
	lit, found := pt.tail, false
	for i, k := max(slices.Index(reach, true), 0), 0; i < len(s); i++ {
		if k == 0 {
			j := strings.IndexByte(s[i:], lit[0])
			if j < 0 {
				break
			}
			i += j
		}
		for k > 0 && s[i] != lit[k] {
			k = pt.fail[k-1]
		}
		if s[i] == lit[k] {
			k++
		}
		if k == len(lit) {
			if reach[i+1-k] {
				next[i+1], found = true, true
			}
			k = pt.fail[k-1]
		}
	}
	return found
}
