package grants

import "strings"

// glob matches one path segment. Its parts are the literal text between its
// stars, so a glob without a star has one part and matches only that text.
// No other character is special: names are data, never patterns.
type glob []string

// compileGlob compiles one segment such as "notion-*" or "search*".
func compileGlob(s string) glob {
	return strings.Split(s, "*")
}

// match reports whether s matches g. The comparison is byte for byte:
// folding case or normalising Unicode would let "ſecret" pass for "secret"
// or a Kelvin sign for "K".
func (g glob) match(s string) bool {
	if len(g) == 1 {
		return s == g[0]
	}
	first, last := g[0], g[len(g)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	// Taking the leftmost match of each middle part is never wrong: a later
	// match would leave the parts after it less room, never more.
	for _, part := range g[1 : len(g)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return true
}

// segment is one compiled segment of an item pattern: a glob, or "**".
type segment struct {
	glob glob
	any  bool // "**": zero or more whole segments
}

// pattern is a compiled item glob over the path "<connector>/<name>".
type pattern struct {
	src  string
	segs []segment
	wild bool // holds a star, so the traversal guard applies to it
}

// compilePattern compiles an item glob. It does not validate: callers run
// ValidatePattern first. Runs of "**" collapse into one, which matches the
// same paths and lets matches rely on no two "**" being adjacent.
func compilePattern(src string) pattern {
	p := pattern{src: src, wild: strings.Contains(src, "*")}
	for seg := range strings.SplitSeq(src, "/") {
		if seg != "**" {
			p.segs = append(p.segs, segment{glob: compileGlob(seg)})
		} else if n := len(p.segs); n == 0 || !p.segs[n-1].any {
			p.segs = append(p.segs, segment{any: true})
		}
	}
	return p
}

// head is the pattern's connector part, "**" included.
func (p pattern) head() string {
	h, _, _ := strings.Cut(p.src, "/")
	return h
}

// headMatches reports whether the pattern could match some item of the
// connector.
func (p pattern) headMatches(connector string) bool {
	return p.segs[0].any || p.segs[0].glob.match(connector)
}

// matches reports whether the pattern matches "<connector>/<name>" without
// building that string. The connector holds no '/'.
func (p pattern) matches(connector, name string) bool {
	if p.segs[0].any {
		// The leading "**" either swallows nothing, so the next segment
		// (never another "**") must match the connector, or it swallows the
		// connector and goes on within the name.
		return p.matchFrom(1, connector, name) || matchSegs(p.segs, name)
	}
	return p.matchFrom(0, connector, name)
}

// matchFrom matches segs[i:] against "<connector>/<name>"; segs[i] is a glob.
func (p pattern) matchFrom(i int, connector, name string) bool {
	return i < len(p.segs) && p.segs[i].glob.match(connector) && matchSegs(p.segs[i+1:], name)
}

// matchSegs reports whether segs match every '/'-separated segment of path.
// An empty path is one empty segment. This is the classic wildcard algorithm
// lifted from bytes to segments: on a mismatch the latest "**" swallows one
// more segment and the rest is retried. It needs no recursion and makes at
// most len(segs) × (segments in path) segment matches, so adversarial
// patterns like "**/a/**/a/**/b" cannot make it blow up.
func matchSegs(segs []segment, path string) bool {
	pi, si := 0, 0 // next pattern segment; start of the next path segment, len(path)+1 when none is left
	star, starSi := -1, 0
	for si <= len(path) {
		if pi < len(segs) && segs[pi].any {
			star, starSi = pi, si
			pi++
			continue
		}
		seg, next := nextSegment(path, si)
		if pi < len(segs) && segs[pi].glob.match(seg) {
			pi, si = pi+1, next
			continue
		}
		if star < 0 {
			return false
		}
		_, starSi = nextSegment(path, starSi)
		pi, si = star+1, starSi
	}
	for pi < len(segs) && segs[pi].any {
		pi++
	}
	return pi == len(segs)
}

// nextSegment returns the segment of path that starts at byte i and the
// start of the one after it, which is len(path)+1 when there is none.
func nextSegment(path string, i int) (string, int) {
	j := strings.IndexByte(path[i:], '/')
	if j < 0 {
		return path[i:], len(path) + 1
	}
	return path[i : i+j], i + j + 1
}
