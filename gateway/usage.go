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
	return g.o.Usage.Last(ctx, g.o.usageStore(), connector, user)
}

// ForgetUsage forgets every use of connector, which an admin is removing:
// this process's memory of them and the record in the store, so that a
// connector added later under its id starts with no last use.
func (g *Gateway) ForgetUsage(ctx context.Context, connector string) error {
	if g.o.Usage != nil {
		g.o.Usage.Retain(func(id string) bool { return id != connector })
	}
	if s := g.o.usageStore(); s != nil {
		return connectors.DeleteUsage(ctx, s, connector)
	}
	return nil
}

// usageStore is where the last uses are flushed: the store, or nil until
// it opens (memory alone).
func (o *Options) usageStore() connectors.Storage {
	if o.OAuth.Store == nil {
		return nil // not a typed nil in the interface
	}
	return o.OAuth.Store
}

// retainUsage drops from memory the uses of every connector that snap
// does not serve, so that no later flush stores them again: removed here
// (its record is deleted at the removal) or by another instance sharing
// the store, whose change this one applies.
func (o *Options) retainUsage(snap *connectors.Snapshot) {
	if o.Usage != nil {
		o.Usage.Retain(func(id string) bool { _, ok := snap.Entry(id); return ok })
	}
}
