package admin

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// TestRevokedFate checks what a PATCH says of the tokens it made useless:
// how many connections' tokens were revoked and how many are left to
// retry; and, when the disconnect failed after the change was stored,
// that the change stands, the old tokens are refused, and how to purge
// them, in the answer and the audit log alike.
func TestRevokedFate(t *testing.T) {
	revs := []oauthflow.Revocation{{Attempted: true, Revoked: true}, {Attempted: true, Retrying: true}, {}}
	for _, tc := range []struct {
		name            string
		revs            []oauthflow.Revocation
		err             error
		sentence, short string
	}{
		{"revoked", revs, nil,
			"revoked: the resource changed; 1 of 3 connections' tokens were revoked at the provider, 1 will be retried, and every connection is disconnected: connect again",
			"tokens revoked: the resource changed"},
		{"no tokens", nil, nil,
			"revoked: the resource changed; no connection held tokens: connect again", "tokens revoked: the resource changed"},
		{"failed after the change", revs[:1], errors.New("the store is down"),
			"refused: the resource changed, so the connector uses none of the old tokens, but disconnecting them failed (the store is down): disconnect each connection (connectors disconnect) to revoke them",
			"tokens refused, their purge failed: the resource changed: the store is down"},
	} {
		f := revokedFate("the resource changed", tc.revs, tc.err)
		if f.sentence != tc.sentence || f.short != tc.short || len(f.revoked) != len(tc.revs) {
			t.Errorf("%s: %+v", tc.name, f)
		}
		if !strings.Contains(f.short, "the resource changed") {
			t.Errorf("%s: the audit log does not say why: %q", tc.name, f.short)
		}
	}
}
