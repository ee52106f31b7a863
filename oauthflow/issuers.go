package oauthflow

import (
	"context"
	"fmt"
	"slices"
)

// Issuers returns the authorization servers that issued the tokens
// connector's grants hold now, each once, sorted: what an admin's change
// of the connector's issuer is judged against. A grant that holds no
// token (disconnected, or never consented) counts for none.
func (m *Manager) Issuers(ctx context.Context, connector string) ([]string, error) {
	c, err := m.lookup(connector)
	if err != nil {
		return nil, err
	}
	keys, err := m.store.List(ctx, prefixGrants+c.id+"/")
	if err != nil {
		return nil, fmt.Errorf("listing the grants of %s: %w", c.id, err)
	}
	var out []string
	for _, key := range keys {
		g, err := m.readGrant(ctx, key)
		if err != nil {
			return nil, err
		}
		if g.rec.Issuer != "" && (g.rec.AccessToken != "" || g.rec.RefreshToken != "") {
			out = append(out, g.rec.Issuer)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
