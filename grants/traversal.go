package grants

import "strings"

// maxUnescape bounds how many layers of percent-encoding the traversal guard
// peels. A name still changing after that many is refused outright.
const maxUnescape = 4

// traversal reports whether a resource name could step out of a wildcard
// pattern's scope once some upstream resolves it: it holds a backslash, a
// dot segment (see dotSegment), or a segment that percent-decodes (once or
// more) to a dot segment or to something with a slash or backslash in it.
//
// A grant such as "internal/file:///data/**" must not admit
// "file:///data/../etc/passwd" or "file:///data/%2e%2e/etc/passwd", and
// whether it does must not depend on how each upstream normalises URIs
// (CVE-2025-53110). So a wildcard pattern never allows such a name; a literal
// pattern that spells it out byte for byte still does.
func traversal(name string) bool {
	if strings.IndexByte(name, '\\') >= 0 {
		return true
	}
	for i := 0; i <= len(name); {
		var seg string
		seg, i = nextSegment(name, i)
		if escapesSegment(seg) {
			return true
		}
	}
	return false
}

// escapesSegment reports whether one segment is, or decodes to, a dot
// segment or a path separator.
func escapesSegment(seg string) bool {
	if dotSegment(seg) {
		return true
	}
	if strings.IndexByte(seg, '%') < 0 {
		return false
	}
	for range maxUnescape {
		dec := unescape(seg)
		if dec == seg {
			return false
		}
		if dotSegment(dec) || strings.ContainsAny(dec, `/\`) {
			return true
		}
		seg = dec
	}
	return true
}

// dotSegment reports whether seg is "." or "..", once anything from a ';',
// '?' or '#' on is set aside. Servlet containers (Tomcat, Jetty) read
// "..;x" as ".." with a path parameter, so "/data/..;/etc" resolves to
// "/etc"; and a URL parser ends the path at '?' or '#', so "/data/..?x" has
// ".." as its last segment.
func dotSegment(seg string) bool {
	if i := strings.IndexAny(seg, ";?#"); i >= 0 {
		seg = seg[:i]
	}
	return seg == "." || seg == ".."
}

// unescape decodes each well-formed %XX in s, in either case of hex, and
// leaves everything else as it is. Unlike url.PathUnescape it never fails,
// so a stray '%' cannot hide an encoded dot elsewhere in the segment.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of the hexadecimal digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
