package oauthflow

import (
	"context"
	"strings"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// grantsChannel is the store channel on which a Manager announces each
// write of a grant to every other instance sharing the store, so that
// they drop their copy in memory at once.
const grantsChannel = "mcpgate_grants"

// A notice is "<notice id> <sender>": the written record's noticeID, a
// hash that names no user and holds no token, and the Locks that wrote
// it, so that those Managers, which counted their own write, skip it.

// notice is the payload announcing a write of the record under key.
func (l *Locks) notice(key string) string { return noticeID(key) + " " + l.holder() }

// heard counts the write that a notice announces, unless these Locks
// made it.
func (l *Locks) heard(payload string) {
	id, sender, ok := strings.Cut(payload, " ")
	if !ok || sender == l.holder() {
		return
	}
	l.changes.changed(id)
}

// follow subscribes the Manager to the grant notices of other instances,
// when its store carries notices, until Close. A Manager that cannot
// subscribe still works: it re-reads each grant it keeps in memory at
// least every maxCacheAge.
func (m *Manager) follow() {
	n, ok := m.store.(store.Notifier)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := n.Subscribe(ctx, grantsChannel, m.locks.heard); err != nil {
		cancel()
		m.log.Warn("not following other instances' grant changes; each is seen within a minute instead", zap.Error(err))
		return
	}
	m.unfollow = cancel
}

// announce tells the other instances that the record under key changed.
// A notice that cannot be sent is logged, not returned: the write it
// announces succeeded, and the others see it within maxCacheAge.
func (m *Manager) announce(ctx context.Context, key string) {
	n, ok := m.store.(store.Notifier)
	if !ok {
		return
	}
	if err := n.Notify(context.WithoutCancel(ctx), grantsChannel, m.locks.notice(key)); err != nil {
		m.log.Warn("announcing a grant change to other instances", zap.Error(err))
	}
}

// Close stops the Manager's subscription to other instances' grant
// changes. It is safe to call more than once; the Manager keeps working
// after it, seeing other instances' changes within maxCacheAge only.
func (m *Manager) Close() {
	if m.unfollow != nil {
		m.unfollow()
	}
}
