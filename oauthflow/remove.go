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
	revs, keys, err := m.disconnectAll(ctx, c, reason)
	if keys == nil {
		return revs, err
	}
	clients, cerr := m.store.List(ctx, prefixClients+c.id+"/")
	return revs, errors.Join(err, cerr, m.deleteAll(ctx, c, append(keys, clients...)))
}

// DisconnectAll disconnects every grant of connector (the shared one, or
// each user's) with reason, as Disconnect does: the tokens are dropped
// with a tombstone stored, then revoked at the authorization server (RFC
// 7009), and a revocation that fails for a while is retried by
// RetryRevocations. The records stay, disconnected with reason, so that
// users see why. It returns the revocation of each grant. The error is
// about the local purge only.
func (m *Manager) DisconnectAll(ctx context.Context, connector, reason string) ([]Revocation, error) {
	c, err := m.lookup(connector)
	if err != nil {
		return nil, err
	}
	revs, _, err := m.disconnectAll(ctx, c, reason)
	return revs, err
}

// ForgetClients deletes the clients registered for connector (RFC 7591)
// and what a static client is bound to, so that its next consent
// registers anew: once its client settings change (how it registers, or
// the client_name it registers with), the old registration must not serve
// it. Retries of revocations by a forgotten client give up, as nothing
// can authenticate as it any more.
func (m *Manager) ForgetClients(ctx context.Context, connector string) error {
	c, err := m.lookup(connector)
	if err != nil {
		return err
	}
	clients, err := m.store.List(ctx, prefixClients+c.id+"/")
	if err != nil {
		return fmt.Errorf("forgetting the clients of %s: %w", c.id, err)
	}
	return m.deleteAll(ctx, c, clients)
}

// disconnectAll disconnects every grant of c with reason, and returns
// their revocations and keys (nil if they cannot be listed).
func (m *Manager) disconnectAll(ctx context.Context, c *connector, reason string) ([]Revocation, []string, error) {
	prefix := prefixGrants + c.id + "/"
	keys, err := m.store.List(ctx, prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("disconnecting %s: listing its grants: %w", c.id, err)
	}
	revs := []Revocation{}
	var errs []error
	for _, key := range keys {
		user := ""
		if seg := strings.TrimPrefix(key, prefix); seg != sharedSegment {
			if user, err = url.PathUnescape(seg); err != nil {
				errs = append(errs, fmt.Errorf("disconnecting %s: a grant key is malformed", c.id))
				continue
			}
		}
		rev, err := m.Disconnect(ctx, c.id, user, reason)
		revs = append(revs, rev)
		errs = append(errs, err)
	}
	return revs, keys, errors.Join(errs...)
}

// deleteAll deletes the records of c under keys.
func (m *Manager) deleteAll(ctx context.Context, c *connector, keys []string) error {
	var errs []error
	for _, key := range keys {
		if err := m.store.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("removing %s: %w", c.id, err))
		}
		m.locks.Changed(key)
	}
	return errors.Join(errs...)
}
