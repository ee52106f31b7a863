package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Remove ends everything a connector holds, as removing it takes: every
// grant (the shared one, or each user's) is disconnected with reason and
// revoked at the authorization server as Disconnect does, then the grants'
// records and the connector's registered clients are deleted, so that a
// connector added later under the same id starts afresh. It returns the
// revocation of each grant. The error is about the local purge only.
func (m *Manager) Remove(ctx context.Context, connector, reason string) ([]Revocation, error) {
	c, err := m.lookup(connector)
	if err != nil {
		return nil, err
	}
	prefix := prefixGrants + c.id + "/"
	keys, err := m.store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("removing %s: listing its grants: %w", c.id, err)
	}
	var revs []Revocation
	var errs []error
	for _, key := range keys {
		user := ""
		if seg := strings.TrimPrefix(key, prefix); seg != sharedSegment {
			if user, err = url.PathUnescape(seg); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: a grant key is malformed", c.id))
				continue
			}
		}
		rev, err := m.Disconnect(ctx, c.id, user, reason)
		revs = append(revs, rev)
		errs = append(errs, err)
	}
	clients, err := m.store.List(ctx, prefixClients+c.id+"/")
	errs = append(errs, err)
	for _, key := range append(keys, clients...) {
		if err := m.store.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("removing %s: %w", c.id, err))
		}
		m.locks.Changed(key)
	}
	return revs, errors.Join(errs...)
}
