package grants

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxConnectorPattern bounds a connector glob. Connector ids have at most 32
// characters, so a longer glob is a mistake, not a need.
const maxConnectorPattern = 64

// ValidatePattern reports whether p is a well-formed item glob over
// "<connector>/<name>", such as "notion/*", "internal/**" or "**".
func ValidatePattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if err := checkText(p); err != nil {
		return fmt.Errorf("pattern %q: %w", p, err)
	}
	if p == "**" {
		return nil
	}
	head, rest, ok := strings.Cut(p, "/")
	if !ok {
		return fmt.Errorf("pattern %q names no item; use %q for all of its items", p, p+"/**")
	}
	if head != "**" {
		if err := checkConnectorGlob(head); err != nil {
			return fmt.Errorf("pattern %q: connector part %w", p, err)
		}
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg != "**" && strings.Contains(seg, "**") {
			return fmt.Errorf("pattern %q: ** must be a whole segment, as in %q", p, "notion/**")
		}
	}
	return nil
}

// ValidateConnectorPattern reports whether p is a valid entry of
// Rule.Connectors: "*", a connector id, or an id with stars such as
// "notion-*".
func ValidateConnectorPattern(p string) error {
	if err := checkConnectorGlob(p); err != nil {
		return fmt.Errorf("connector pattern %w", err)
	}
	return nil
}

// checkConnectorGlob checks a single-segment connector glob. Its errors
// start with the quoted glob so that callers can prefix what it is.
func checkConnectorGlob(g string) error {
	switch {
	case g == "":
		return errors.New(`"" is empty`)
	case len(g) > maxConnectorPattern:
		return fmt.Errorf("%q is longer than %d characters", g, maxConnectorPattern)
	case strings.Contains(g, "**"):
		// Within one segment "**" means what "*" means; rejecting it keeps
		// "**" meaning "any number of segments" wherever it appears.
		return fmt.Errorf("%q may not contain **; use *", g)
	}
	for _, r := range g {
		if !isConnectorRune(r) {
			return fmt.Errorf("%q may hold only lowercase letters, digits, '-' and '*'", g)
		}
	}
	return nil
}

// isConnectorRune reports whether r may appear in a connector glob.
func isConnectorRune(r rune) bool {
	return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '*'
}

// ValidateSource reports whether s is a valid rule source: "*" (any
// identified caller), "user:<id>" or "group:<name>".
func ValidateSource(s string) error {
	if s == "*" {
		return nil
	}
	kind, value, ok := strings.Cut(s, ":")
	if !ok || kind != "user" && kind != "group" {
		return fmt.Errorf("source %q: want *, user:<id> or group:<name>", s)
	}
	if value == "" {
		return fmt.Errorf("source %q: empty %s", s, kind)
	}
	if err := checkText(value); err != nil {
		return fmt.Errorf("source %q: %w", s, err)
	}
	if i := strings.IndexFunc(value, unicode.IsSpace); i >= 0 {
		return fmt.Errorf("source %q: %s contains white space", s, kind)
	}
	return nil
}

// ValidateOperations accepts "read", the only restriction a rule can make
// of its tools' operations; leaving operations out allows writes too.
func ValidateOperations(v string) error {
	if v != ReadOnly {
		return fmt.Errorf("operations %q must be read (leave it out to allow writes)", v)
	}
	return nil
}

// ParseRole parses a rule's role: "" and "user" give RoleUser, "admin" gives
// RoleAdmin.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case "", RoleUser:
		return RoleUser, nil
	case RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want user or admin", s)
}

// checkText rejects invalid UTF-8 and control characters, which have no
// honest use in a config value and can hide what a line really says.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("contains control character %U", r)
	}
	return nil
}
