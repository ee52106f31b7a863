package gateway

import (
	"context"
	"slices"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// TokenChanges is what of connector old changed in next that its tokens
// depend on (connectors.TokenChanges), but for an issuer configured to
// the one that every grant already came from, which m, a manager that
// serves old, tells. Grants that cannot be read to tell count as from
// another.
func TokenChanges(ctx context.Context, m *oauthflow.Manager, old, next connectors.Config) []string {
	changes := connectors.TokenChanges(old, next)
	issuer := ""
	if o := next.OAuth(); o != nil {
		issuer = o.Issuer
	}
	if issuer == "" || !slices.Contains(changes, connectors.IssuerChange) {
		return changes
	}
	issuers, err := m.Issuers(ctx, old.ID)
	if err != nil || slices.ContainsFunc(issuers, func(s string) bool { return s != issuer }) {
		return changes
	}
	return slices.DeleteFunc(changes, func(c string) bool { return c == connectors.IssuerChange })
}

// SettleTokens disconnects and revokes every grant of connector id that
// changes (TokenChanges, not empty) made useless, through m, a manager
// that knows the client they were issued to, with a reason for users to
// read; a revocation that fails for a while is retried (oauthflow's
// RetryRevocations). A connector that no longer uses OAuth (usesOAuth
// false) has its records purged; one whose client changed, its
// registered clients forgotten, so that its next consent registers anew.
// It returns why, in a few words, and the revocations; the error is
// about the local purge only.
func SettleTokens(ctx context.Context, m *oauthflow.Manager, id string, changes []string, usesOAuth bool) (string, []oauthflow.Revocation, error) {
	why := JoinWords(changes) + " changed"
	reason := "an admin changed the connector: " + why + "; connect again"
	if !usesOAuth {
		revs, err := m.Remove(ctx, id, reason)
		return why, revs, err
	}
	revs, err := m.DisconnectAll(ctx, id, reason)
	if err == nil && slices.Contains(changes, connectors.ClientChange) {
		err = m.ForgetClients(ctx, id)
	}
	return why, revs, err
}

// JoinWords joins phrases as people list them: "a, b and c".
func JoinWords(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
