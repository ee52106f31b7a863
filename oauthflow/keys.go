package oauthflow

import (
	"fmt"
	"strings"
)

// Store key prefixes. Every record of this package lives under "oauth/".
const (
	prefixClients = "oauth/clients/"
	prefixFlows   = "oauth/flows/"
	prefixGrants  = "oauth/grants/"
	// prefixRevocations holds revocations still owed to an authorization
	// server (RFC 7009).
	prefixRevocations = "oauth/revoke/"
	// prefixPending indexes the pending flows by who started them, to
	// bound them (see pendingKey). It must not start with prefixFlows.
	prefixPending = "oauth/pending/"
)

// sharedSegment stands for the user in the keys of shared-consent grants.
// segment escapes "_", so no user's segment can equal it.
const sharedSegment = "_shared"

// grantKey is where the grant of one connector and subject ("" for shared
// consent) lives.
func grantKey(connector, subject string) string {
	if subject == "" {
		return prefixGrants + connector + "/" + sharedSegment
	}
	return prefixGrants + connector + "/" + segment(subject)
}

// clientKey is where the client registered with one authorization server
// for one connector lives: credentials are keyed by issuer and never
// reused across servers.
func clientKey(connector, issuer string) string {
	return prefixClients + connector + "/" + segment(issuer)
}

// staticBindingKey is where a static client's authorization server is
// remembered when config does not name the issuer.
func staticBindingKey(connector string) string {
	return prefixClients + connector + "/" + "_static"
}

// flowKey is where a pending consent flow lives.
func flowKey(id string) string { return prefixFlows + id }

// revocationKey is a fresh random key for a revocation tombstone: a
// tombstone moves to a new one each time it is claimed (see claim).
func revocationKey() string { return prefixRevocations + b64.EncodeToString(newFlowID()) }

// segment escapes s into one key segment: every byte but ASCII letters,
// digits, "-", "@" and "+" becomes %XX. So "/" cannot add a segment, "."
// cannot make ".." (for file-system backends), and "_" is free for
// sharedSegment.
func segment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '@' || c == '+' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
