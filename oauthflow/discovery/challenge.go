package discovery

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoChallenge is returned by ParseChallenge for a header without a
// Bearer challenge.
var ErrNoChallenge = errors.New("no Bearer challenge")

// Bounds on what one header may make the parser hold.
const (
	maxChallengeLen = 16 << 10
	maxScopes       = 256
)

// ParseChallenge parses a WWW-Authenticate field value (RFC 9110 §11.6.1)
// and returns its first Bearer challenge (RFC 6750 §3).
//
// The value may hold several challenges ("Basic realm=x, Bearer
// scope=y"); scheme and parameter names are case-insensitive; parameter
// values are tokens or quoted strings with backslash escapes. A parameter
// repeated within a challenge, malformed syntax before the Bearer
// challenge, or an invalid scope token is an error. Challenges after the
// first Bearer one are not read.
func ParseChallenge(header string) (*Challenge, error) {
	if len(header) > maxChallengeLen {
		return nil, fmt.Errorf("www-authenticate: longer than %d bytes", maxChallengeLen)
	}
	p := &challengeParser{s: header}
	for {
		scheme, params, err := p.next()
		if err != nil {
			return nil, fmt.Errorf("www-authenticate: %w", err)
		}
		if scheme == "" {
			return nil, ErrNoChallenge
		}
		if strings.EqualFold(scheme, "Bearer") {
			return bearerChallenge(params)
		}
	}
}

// bearerChallenge builds a Challenge from a Bearer challenge's parameters.
func bearerChallenge(params map[string]string) (*Challenge, error) {
	ch := &Challenge{ResourceMetadata: params["resource_metadata"], Error: params["error"]}
	for s := range strings.SplitSeq(params["scope"], " ") {
		if s == "" {
			continue
		}
		if !ValidScope(s) {
			return nil, fmt.Errorf("www-authenticate: invalid scope token %s", quote(s))
		}
		if len(ch.Scope) == maxScopes {
			return nil, fmt.Errorf("www-authenticate: more than %d scopes", maxScopes)
		}
		ch.Scope = append(ch.Scope, s)
	}
	return ch, nil
}

// ValidScope reports whether s is an RFC 6749 §3.3 scope-token, of at most
// 256 bytes.
func ValidScope(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// challengeParser reads challenges from a WWW-Authenticate value.
type challengeParser struct {
	s string
	i int
}

// next returns the next challenge's scheme and parameters (names
// lower-cased), or an empty scheme at the end of the value.
func (p *challengeParser) next() (string, map[string]string, error) {
	p.skipListSeparators()
	if p.done() {
		return "", nil, nil
	}
	scheme := p.token()
	if scheme == "" {
		return "", nil, p.errorf("expected an auth-scheme")
	}
	if p.done() || p.peek() == ',' {
		return scheme, nil, nil
	}
	if !p.skipSpace() {
		return "", nil, p.errorf("expected a space after the auth-scheme")
	}
	if p.done() || p.peek() == ',' {
		return scheme, nil, nil
	}
	if !p.paramAhead() {
		return scheme, nil, p.token68()
	}
	params, err := p.params()
	return scheme, params, err
}

// params reads a comma-separated list of auth-params, stopping before
// the next challenge.
func (p *challengeParser) params() (map[string]string, error) {
	params := map[string]string{}
	for {
		name, value, err := p.param()
		if err != nil {
			return nil, err
		}
		if _, dup := params[name]; dup {
			return nil, p.errorf("parameter %s repeated", quote(name))
		}
		params[name] = value
		p.skipSpace()
		if p.done() {
			return params, nil
		}
		if p.peek() != ',' {
			return nil, p.errorf("expected ',' after parameter %s", quote(name))
		}
		p.skipListSeparators()
		if p.done() || !p.paramAhead() {
			return params, nil // what follows is another challenge
		}
	}
}

// param reads one auth-param: token BWS "=" BWS ( token / quoted-string ).
func (p *challengeParser) param() (name, value string, err error) {
	name = strings.ToLower(p.token())
	p.skipSpace()
	p.i++ // the "=" that paramAhead saw
	p.skipSpace()
	if !p.done() && p.peek() == '"' {
		value, err = p.quoted()
		return name, value, err
	}
	if value = p.token(); value == "" {
		return "", "", p.errorf("expected a value for parameter %s", quote(name))
	}
	return name, value, nil
}

// paramAhead reports whether an auth-param starts here: a token, "=", and
// a value rather than the "=" padding of a token68.
func (p *challengeParser) paramAhead() bool {
	q := *p
	if q.token() == "" {
		return false
	}
	q.skipSpace()
	if q.done() || q.peek() != '=' {
		return false
	}
	q.i++
	q.skipSpace()
	return !q.done() && (q.peek() == '"' || isTchar(q.peek()))
}

// token68 skips a token68 credential, which Bearer challenges do not use,
// and requires the challenge to end after it.
func (p *challengeParser) token68() error {
	start := p.i
	for !p.done() && isToken68Char(p.peek()) {
		p.i++
	}
	if p.i == start {
		return p.errorf("expected a parameter or token68")
	}
	for !p.done() && p.peek() == '=' {
		p.i++
	}
	p.skipSpace()
	if !p.done() && p.peek() != ',' {
		return p.errorf("expected ',' after token68")
	}
	return nil
}

// quoted reads a quoted-string and returns it unescaped.
func (p *challengeParser) quoted() (string, error) {
	var b strings.Builder
	for p.i++; !p.done(); p.i++ {
		switch c := p.peek(); {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			p.i++
			if p.done() || !isQuotedPairChar(p.peek()) {
				return "", p.errorf("bad escape in quoted string")
			}
			b.WriteByte(p.peek())
		case isQdtext(c):
			b.WriteByte(c)
		default:
			return "", p.errorf("control character in quoted string")
		}
	}
	return "", p.errorf("unterminated quoted string")
}

// token reads a run of tchar.
func (p *challengeParser) token() string {
	start := p.i
	for !p.done() && isTchar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// skipSpace skips spaces and tabs and reports whether there were any.
func (p *challengeParser) skipSpace() bool {
	start := p.i
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
	return p.i > start
}

// skipListSeparators skips white space and the commas of a #list, which
// may hold empty elements (RFC 9110 §5.6.1).
func (p *challengeParser) skipListSeparators() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == ',') {
		p.i++
	}
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }
func (p *challengeParser) peek() byte { return p.s[p.i] }

// errorf returns a syntax error at the current offset.
func (p *challengeParser) errorf(format string, args ...any) error {
	return fmt.Errorf(format+" at offset %d", append(args, p.i)...)
}

// isTchar reports an RFC 9110 §5.6.2 token character.
func isTchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68Char reports an RFC 9110 §11.2 token68 character, before the
// "=" padding.
func isToken68Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~+/", c) >= 0
}

// isQdtext reports a character allowed unescaped in a quoted-string.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || 0x23 <= c && c <= 0x5b || 0x5d <= c && c <= 0x7e || c >= 0x80
}

// isQuotedPairChar reports a character allowed after a backslash.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || 0x20 <= c && c <= 0x7e || c >= 0x80
}
