package mcpmux

import "strings"

// matchTemplate reports whether uri is an expansion of the RFC 6570 URI
// template tmpl. A simple expression ({id}) stands for text without '/',
// '?' or '#'; the other operators ({+path}, {/seg}, {?q} ...) for any
// text. That is enough to route a read to the template's connector; the
// upstream checks the values itself.
func matchTemplate(tmpl, uri string) bool {
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
		if matchTemplate(rest, uri[i:]) {
			return true
		}
		if i < len(uri) && simple && strings.IndexByte("/?#", uri[i]) >= 0 {
			return false
		}
	}
	return false
}
