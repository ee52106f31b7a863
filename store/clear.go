package store

import (
	"fmt"
	"strings"
)

// ClearPrefix starts the keys of records that are kept in the clear beside
// the sealed ones, written to the inner store directly: Sealed's own wrap
// counts, and the audit ring, whose events are not secret (and must never
// hold a secret). A Sealed does not list them, and refuses them by key, so
// that a clear record is never taken for a damaged sealed one (by Rewrap
// or the key check) and a sealed record is never written where clear ones
// live.
const ClearPrefix = "clear/"

// isClear reports whether key belongs to a clear record.
func isClear(key string) bool { return strings.HasPrefix(key, ClearPrefix) }

// refuseClear refuses the keys of clear records, which a Sealed never
// reads or writes through its methods.
func refuseClear(key string) error {
	if isClear(key) {
		return fmt.Errorf("%w %q: the prefix %q holds records kept in the clear", ErrInvalidKey, key, ClearPrefix)
	}
	return nil
}
