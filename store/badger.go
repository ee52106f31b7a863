package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrInUse means another open handle, in this process or another, holds
// the lock on a Badger directory. Badger locks the directory per open, so a
// program that reloads its configuration must share one handle per path.
var ErrInUse = errors.New("directory in use by another open handle (in this process or another)")

// maxAttempts bounds the retries of a transaction that lost a conflict.
// A conflict means another transaction wrote the key first, so a retry
// sees the new value and usually settles at once.
const maxAttempts = 16

// Badger is a Store in a Badger database directory. Open one with
// OpenBadger and share it: a second open of the same directory fails. It
// implements Shared for one process: its leases and notices reach the
// users of the same *Badger.
//
// A record's version is Badger's own: the commit timestamp of the
// transaction that wrote it. It grows with every write across the
// database and survives a reopen, so a key deleted and written again
// never gets a version it had before, and no record changes format.
type Badger struct {
	db  *badger.DB
	dir string

	// addMu serializes Add. A count is one hot key: under optimistic
	// transactions, concurrent adds would conflict and could starve one
	// another, while one handle holds the directory anyway.
	addMu sync.Mutex

	local
}

// OpenBadger opens (creating with mode 0700 if needed) the Badger database
// in dir. Writes are synced to disk before they return. A nil logger
// discards Badger's messages.
func OpenBadger(dir string, logger *zap.Logger) (*Badger, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating badger directory %q: %w", dir, err)
	}
	removeEmptyLogs(dir, logger)
	db, err := badger.Open(badgerOptions(dir, logger))
	if err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("store: opening badger at %q: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("store: opening badger at %q: %w", dir, err)
	}
	b := &Badger{db: db, dir: dir}
	b.runLease = b.lease
	return b, nil
}

// badgerOptions sizes Badger for what mcpgate keeps: kilobytes of
// credentials (tokens, clients, grants, the registry) and the audit ring,
// which under load writes a few hundred bytes per tool call, in
// transactions of at most 256 events and 128 KiB, a page (one key) per
// class of event.
// Badger's defaults are sized for large databases. Its memtable is a byte slice in
// the Go heap, allocated whole at open and at every flush, and the
// collector lets the heap grow to twice what is live: each megabyte of
// memtable costs about two of RSS, idle or not.
//
//   - MemTableSize 1 MiB. The memtable's arena is 1.3 times it (room for
//     one more transaction): 1.4 MB of live heap after open, against 2.8
//     at 2 MiB and 10.4 at Badger's 8 (TestBadgerHeap). The 8 MiB held
//     72 MiB RSS with 1,000 idle agent sessions, 2 MiB 65. A transaction
//     may hold 15 % of it, 157,286 bytes: the audit ring caps its batches
//     at 128 KiB, which holds 256 ordinary tool calls, even a key each with
//     their deletes as an older version wrote them (TestBadgerRoom;
//     TestRingBatchBytes in audit). A flush writes a
//     table of 1 MiB, in milliseconds.
//   - ValueThreshold 128 KiB: Badger wants it below that bound. Every
//     credential and page of audit events is smaller, stays in the LSM tree, and
//     leaves the value log without garbage to collect. A larger value (a
//     tool selection of hundreds of large tools) goes to the value log
//     and counts only a pointer against its transaction; rewriting it,
//     which only an admin's change does, leaves garbage there.
//   - NumMemtables 2: one taking writes, one being flushed. A 1 MiB
//     flush takes milliseconds; the default 5 only lets a burst of audit
//     events hold up to 6.5 MB of arenas before writes wait.
//   - BlockCacheSize 0: without compression or encryption, Badger reads
//     a table's blocks straight from its mmap, so a cache would hold only
//     pointers to them, at the cost of its sketch and goroutines.
//   - ValueLogFileSize 64 MiB: the value log's file is mapped at twice
//     that but sparse; with values in the tree it is never touched and
//     costs neither RSS nor open time (measured within noise of 1 MiB).
//
// Writes are synced before they return. Compression is off: sealed values
// do not compress.
func badgerOptions(dir string, logger *zap.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{logger.Named("badger")}).
		WithCompression(options.None).
		WithMemTableSize(badgerMemTable).
		WithValueThreshold(badgerValueThreshold).
		WithNumMemtables(2).
		WithBlockCacheSize(0).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2)
}

// badgerMemTable and badgerValueThreshold are sized in badgerOptions.
const (
	badgerMemTable       = 1 << 20
	badgerValueThreshold = 128 << 10
)

// isLocked reports whether Badger refused to open because the directory is
// locked. Badger has no sentinel for it; its message on every platform
// says another process is using the database.
func isLocked(err error) bool {
	return strings.Contains(err.Error(), "Another process is using this Badger database")
}

// Close closes the database. Closing twice is not an error.
func (b *Badger) Close() error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store: closing badger at %q: %w", b.dir, err)
	}
	return nil
}

// String names the directory.
func (b *Badger) String() string { return fmt.Sprintf("store.Badger{dir: %q}", b.dir) }

// Get returns a copy of the value under key, or ErrNotFound.
func (b *Badger) Get(ctx context.Context, key string) ([]byte, error) {
	value, _, err := b.GetVersioned(ctx, key)
	return value, err
}

// GetVersioned returns a copy of the value under key and its version, or
// ErrNotFound.
func (b *Badger) GetVersioned(_ context.Context, key string) ([]byte, uint64, error) {
	if err := CheckKey(key); err != nil {
		return nil, 0, err
	}
	var value []byte
	var version uint64
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := getItem(txn, key)
		if err != nil {
			return err
		}
		version = item.Version()
		value, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, 0, b.wrap("getting", key, err)
	}
	return value, version, nil
}

// PutIfVersion stores value under key if its version is still version,
// zero meaning that the key must not exist. The check and the write are
// one transaction; of concurrent writers of one version, the losers
// conflict, retry and find the winner's version.
func (b *Badger) PutIfVersion(_ context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	var written bool
	err := b.update(func(txn *badger.Txn) error {
		written = false
		var current uint64
		item, err := getItem(txn, key)
		switch {
		case err == nil:
			current = item.Version()
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if current != version {
			return nil
		}
		written = true
		return txn.SetEntry(newEntry(key, value, ttl, time.Now()))
	})
	return written, b.wrap("putting", key, err)
}

// Put stores value under key; a ttl above zero expires it.
func (b *Badger) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	return b.wrap("putting", key, b.db.Update(writeAll([]Write{{Key: key, Value: value, TTL: ttl}})))
}

// expiresAt converts a ttl to Badger's expiry in Unix seconds, rounding up
// so that a record lives at least ttl (and at most a second longer).
func expiresAt(now time.Time, ttl time.Duration) uint64 {
	t := now.Add(ttl)
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return uint64(s)
}

// Take returns the value under key and deletes it in one transaction. Of
// concurrent Takes, the losers conflict, retry and find nothing.
func (b *Badger) Take(_ context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	var value []byte
	err := b.update(func(txn *badger.Txn) error {
		var err error
		if value, err = getValue(txn, key); err != nil {
			return err
		}
		return txn.Delete([]byte(key))
	})
	return value, b.wrap("taking", key, err)
}

// Delete removes key; a missing key is not an error.
func (b *Badger) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	return b.wrap("deleting", key, b.db.Update(writeAll([]Write{{Key: key, Delete: true}})))
}

// List returns the live keys that start with prefix, in lexical order.
func (b *Badger) List(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if key := string(it.Item().Key()); !isInternal(key) {
				keys = append(keys, key)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: listing %q in badger at %q: %w", prefix, b.dir, err)
	}
	return keys, nil
}

// CompareAndSwap replaces the value under key with value if it equals old,
// keeping the record's expiry. The check and the write are one
// transaction.
func (b *Badger) CompareAndSwap(_ context.Context, key string, old, value []byte) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	var swapped bool
	err := b.update(func(txn *badger.Txn) error {
		swapped = false
		item, err := txn.Get([]byte(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		same := false
		err = item.Value(func(v []byte) error { same = bytes.Equal(v, old); return nil })
		if err != nil || !same {
			return err
		}
		e := badger.NewEntry([]byte(key), value)
		e.ExpiresAt = item.ExpiresAt()
		swapped = true
		return txn.SetEntry(e)
	})
	return swapped, b.wrap("swapping", key, err)
}

// Add adds n to the counter under key in one transaction and returns the
// new count. The counter is a record of 8 bytes big-endian, which never
// expires; adding zero reads it without writing.
func (b *Badger) Add(ctx context.Context, key string, n uint64) (uint64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	if n == 0 {
		return b.count(ctx, key)
	}
	b.addMu.Lock()
	defer b.addMu.Unlock()
	var count uint64
	err := b.update(func(txn *badger.Txn) error {
		old, err := getValue(txn, key)
		found := err == nil
		if !found && !errors.Is(err, ErrNotFound) {
			return err
		}
		var value []byte
		if count, value, err = bump(old, found, n); err != nil {
			return err
		}
		return txn.Set([]byte(key), value)
	})
	return count, b.wrap("adding to", key, err)
}

// count reads the counter under key.
func (b *Badger) count(ctx context.Context, key string) (uint64, error) {
	old, err := b.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	count, _, err := bump(old, true, 0)
	return count, b.wrap("adding to", key, err)
}

// update runs fn in an update transaction, retrying it when it loses a
// conflict with a concurrent transaction.
func (b *Badger) update(fn func(txn *badger.Txn) error) error {
	var err error
	for range maxAttempts {
		if err = b.db.Update(fn); !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("gave up after %d conflicts: %w", maxAttempts, err)
}

// getValue copies the value under key out of txn, so that it outlives the
// transaction.
func getValue(txn *badger.Txn, key string) ([]byte, error) {
	item, err := getItem(txn, key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// getItem returns the item under key in txn, or ErrNotFound.
func getItem(txn *badger.Txn, key string) (*badger.Item, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return item, err
}

// wrap adds context to err. ErrNotFound is returned as is: it is the
// expected answer, not a failure.
func (b *Badger) wrap(op, key string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("store: %s %q in badger at %q: %w", op, key, b.dir, err)
}

// badgerLogger routes Badger's log to zap. Badger's info lines (tables
// opened, files replayed) become debug lines; its debug lines are dropped.
type badgerLogger struct{ l *zap.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.log(zapcore.ErrorLevel, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.log(zapcore.WarnLevel, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.log(zapcore.DebugLevel, f, a) }
func (b badgerLogger) Debugf(string, ...any)       {}

func (b badgerLogger) log(level zapcore.Level, format string, args []any) {
	if b.l.Core().Enabled(level) {
		b.l.Log(level, strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}

// Batch applies writes in one transaction, synced to disk once. A
// transaction that only writes never conflicts, so it is not retried.
func (b *Badger) Batch(_ context.Context, writes []Write) error {
	if err := checkWrites(writes); err != nil {
		return err
	}
	if err := b.db.Update(writeAll(writes)); err != nil {
		return fmt.Errorf("store: writing a batch of %d in badger at %q: %w", len(writes), b.dir, err)
	}
	return nil
}

// writeAll returns the transaction that makes writes.
func writeAll(writes []Write) func(txn *badger.Txn) error {
	return func(txn *badger.Txn) error {
		now := time.Now()
		for _, w := range writes {
			if w.Delete {
				if err := txn.Delete([]byte(w.Key)); err != nil {
					return err
				}
				continue
			}
			if err := txn.SetEntry(newEntry(w.Key, w.Value, w.TTL, now)); err != nil {
				return err
			}
		}
		return nil
	}
}

// newEntry returns the entry that puts value under key at now, expiring
// after ttl when it is above zero.
func newEntry(key string, value []byte, ttl time.Duration, now time.Time) *badger.Entry {
	e := badger.NewEntry([]byte(key), value)
	if ttl > 0 {
		e.ExpiresAt = expiresAt(now, ttl)
	}
	return e
}

// lease runs op on the lease on name in one transaction. The state is
// a record under leasePrefix, without expiry and never deleted, so that
// tokens keep growing across releases and reopens; List does not show it.
func (b *Badger) lease(name string, op leaseOp) error {
	key := leasePrefix + name
	err := b.update(func(txn *badger.Txn) error {
		var s leaseState
		raw, err := getValue(txn, key)
		switch {
		case err == nil:
			if s, err = decodeLease(raw); err != nil {
				return err
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		changed, err := op(&s, time.Now())
		if err != nil || !changed {
			return err
		}
		return txn.Set([]byte(key), s.encode())
	})
	if errors.Is(err, ErrLeaseHeld) || errors.Is(err, ErrLeaseLost) {
		return err
	}
	return b.wrap("leasing", name, err)
}

var _ Shared = (*Badger)(nil)
