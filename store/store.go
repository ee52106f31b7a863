// Package store keeps mcpgate's durable records: OAuth clients, tokens,
// pending consent flows and runtime configuration. A Store is a flat
// key/value space; Sealed wraps one so that every value is encrypted and
// bound to its key.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound means no record exists under the key (or it has expired).
var ErrNotFound = errors.New("store: record not found")

// Store is a durable key/value space. Keys are printable strings whose
// segments are separated by "/". Implementations are safe for concurrent use.
type Store interface {
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key. A ttl above zero makes the record
	// expire after that long; zero keeps it until deleted.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Take returns the value under key and deletes it in one step: of
	// several concurrent Takes of one key, exactly one gets the value and
	// the others get ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every key that starts with prefix, in lexical order.
	List(ctx context.Context, prefix string) ([]string, error)
}
