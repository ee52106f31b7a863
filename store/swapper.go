package store

import "context"

// Swapper is implemented by stores that can replace a value only if it has
// not changed since it was read. Sealed.Rewrap needs it so that a re-wrap
// never overwrites a newer value written meanwhile.
type Swapper interface {
	// CompareAndSwap stores value under key if the current value equals
	// old, keeping the record's expiry, and reports whether it did. A
	// missing key is not swapped.
	CompareAndSwap(ctx context.Context, key string, old, value []byte) (bool, error)
}
