package store

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidKey means a key is empty, contains NUL or uses a prefix Badger
// reserves for itself.
var ErrInvalidKey = errors.New("store: invalid key")

// badgerReserved is the prefix Badger keeps for its own records. Every
// backend rejects it, so that a key valid in tests is valid in production.
const badgerReserved = "!badger!"

// checkKey returns an error wrapping ErrInvalidKey if key cannot be stored.
// Keys are text: NUL is rejected because a key may become a file name (in
// a Caddy-storage backend), where NUL cannot appear.
func checkKey(key string) error {
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
