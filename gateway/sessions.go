package gateway

import (
	"context"
	"errors"

	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// Ended agent sessions, shared by every instance on one store: a session
// id is sealed and self-describing, so any instance may serve it, and a
// DELETE on one must end it on all. The store keeps a tombstone for as
// long as an id can be valid; a notice makes the others end their copy at
// once, and each rechecks the tombstone now and then in case a notice was
// lost (mcpmux.SessionRecheck).

const (
	// endedPrefix is where the tombstones live. The key holds the
	// session's tag, a hash of its id: the id is a bearer credential of
	// the session, and never reaches the store.
	endedPrefix = "sessions/ended/"
	// endedChannel carries the tag of each session ended.
	endedChannel = "mcpgate_sessions"
)

// SessionEnds records ended sessions in a shared store. It implements
// mcpmux.SessionEnds.
type SessionEnds struct {
	Store store.Shared
}

// End keeps a tombstone for tag while an id can be valid, then tells the
// other instances.
func (s SessionEnds) End(ctx context.Context, tag string) error {
	if err := s.Store.Put(ctx, endedPrefix+tag, []byte{1}, mcpmux.SessionMaxAge); err != nil {
		return err
	}
	return s.Store.Notify(ctx, endedChannel, tag)
}

// Ended reports whether tag has a tombstone.
func (s SessionEnds) Ended(ctx context.Context, tag string) (bool, error) {
	_, err := s.Store.Get(ctx, endedPrefix+tag)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Follow ends the sessions held in sessions that another instance ended,
// as their notices come, until ctx ends.
func (s SessionEnds) Follow(ctx context.Context, sessions *mcpmux.Sessions) error {
	return s.Store.Subscribe(ctx, endedChannel, sessions.EndLocal)
}

var _ mcpmux.SessionEnds = SessionEnds{}
