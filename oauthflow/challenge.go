package oauthflow

import (
	"strings"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// maxChallenge bounds the WWW-Authenticate header that is parsed.
const maxChallenge = 8 << 10

// parseChallenge reads the auth-params of the first Bearer challenge in a
// WWW-Authenticate header (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1).
// Other schemes, and whatever does not parse, are skipped: the header is
// the upstream's word, used only as a hint. It returns nil without a
// Bearer challenge.
func parseChallenge(h string) *discovery.Challenge {
	if len(h) > maxChallenge {
		return nil
	}
	p := &challengeParser{s: h}
	var params map[string]string
	for p.more() {
		name := p.token()
		if name == "" {
			p.pos++ // not a token character: skip it
			continue
		}
		if !p.skip('=') {
			if params != nil {
				break // the next scheme: the Bearer challenge ended
			}
			if strings.EqualFold(name, "Bearer") {
				params = map[string]string{}
			}
			continue
		}
		value := p.value()
		if params != nil {
			params[strings.ToLower(name)] = value
		}
	}
	if params == nil {
		return nil
	}
	return &discovery.Challenge{
		ResourceMetadata: params["resource_metadata"],
		Scope:            scopeList(params["scope"]),
		Error:            params["error"],
	}
}

// scopeList splits a scope parameter, keeping only valid scope tokens.
func scopeList(s string) []string {
	var out []string
	for _, sc := range strings.Fields(s) {
		if validScope(sc) && len(out) < 64 {
			out = append(out, sc)
		}
	}
	return out
}

// challengeParser walks a WWW-Authenticate header.
type challengeParser struct {
	s   string
	pos int
}

// more skips white space and commas, and reports whether input remains.
func (p *challengeParser) more() bool {
	for p.pos < len(p.s) && strings.IndexByte(" \t,", p.s[p.pos]) >= 0 {
		p.pos++
	}
	return p.pos < len(p.s)
}

// skip consumes c, after optional white space, if it comes next.
func (p *challengeParser) skip(c byte) bool {
	i := p.pos
	for i < len(p.s) && (p.s[i] == ' ' || p.s[i] == '\t') {
		i++
	}
	if i < len(p.s) && p.s[i] == c {
		p.pos = i + 1
		return true
	}
	return false
}

// token consumes an RFC 9110 token.
func (p *challengeParser) token() string {
	start := p.pos
	for p.pos < len(p.s) && isTokenChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// value consumes a token or a quoted-string, unescaping the latter.
func (p *challengeParser) value() string {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
	if p.pos >= len(p.s) || p.s[p.pos] != '"' {
		return p.token()
	}
	var b strings.Builder
	for p.pos++; p.pos < len(p.s); p.pos++ {
		switch c := p.s[p.pos]; {
		case c == '"':
			p.pos++
			return b.String()
		case c == '\\' && p.pos+1 < len(p.s):
			p.pos++
			b.WriteByte(p.s[p.pos])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) < 0
}
