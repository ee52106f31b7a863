package gateway

import (
	"context"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// LastUsed returns when user last used connector, or with no user, when
// anyone did: the newer of what this process saw and what the store
// holds, from other instances and earlier runs. Zero means never, as far
// as either knows, or that uses are not recorded.
func (g *Gateway) LastUsed(ctx context.Context, connector, user string) (time.Time, error) {
	if g.o.Usage == nil {
		return time.Time{}, nil
	}
	var s connectors.Storage // nil until the store opens: memory alone
	if g.o.OAuth.Store != nil {
		s = g.o.OAuth.Store
	}
	return g.o.Usage.Last(ctx, s, connector, user)
}
