package store

import (
	"context"
	"time"
)

// Write is one write of a batch: a Put of Value under Key (expiring after
// TTL when it is above zero), or, with Delete set, a Delete of Key.
type Write struct {
	Key    string
	Value  []byte
	TTL    time.Duration
	Delete bool
}

// Batcher is implemented by stores that can apply several writes at once.
// A store that syncs every write to disk pays that once per batch rather
// than once per write, which is what an append-heavy log such as the
// audit ring needs.
type Batcher interface {
	// Batch applies writes in order, in one transaction: a reader sees
	// all of them or none. A failed key check rejects the whole batch.
	Batch(ctx context.Context, writes []Write) error
}

// checkWrites checks the key of every write before any is applied.
func checkWrites(writes []Write) error {
	for _, w := range writes {
		if err := CheckKey(w.Key); err != nil {
			return err
		}
	}
	return nil
}
