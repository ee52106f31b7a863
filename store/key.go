package store

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidKey means a key is empty, contains NUL or uses a prefix Badger
// reserves for itself.
var ErrInvalidKey = errors.New("store: invalid key")

// internalPrefix starts the keys under which a backend keeps records of
// its own, such as leases. No caller can name them, since CheckKey
// refuses NUL, and List leaves them out.
const internalPrefix = "\x00"

// isInternal reports whether key belongs to a backend's own records.
func isInternal(key string) bool { return strings.HasPrefix(key, internalPrefix) }

// badgerReserved is the prefix Badger keeps for its own records. Every
// backend rejects it, so that a key valid in tests is valid in production.
const badgerReserved = "!badger!"

// CheckKey returns an error wrapping ErrInvalidKey if key cannot be stored.
// Every backend checks its keys (and lease names) with it, so that a key
// valid on one backend is valid on all. Keys are text: NUL is rejected
// because a key may become a file name (in a Caddy-storage backend) or a
// PostgreSQL text value, where NUL cannot appear; it also keeps the
// backends' internal records (see internalPrefix) out of every caller's
// reach.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w %q: contains NUL", ErrInvalidKey, key)
	case strings.HasPrefix(key, badgerReserved):
		return fmt.Errorf("%w %q: the prefix %q is reserved", ErrInvalidKey, key, badgerReserved)
	}
	return nil
}
