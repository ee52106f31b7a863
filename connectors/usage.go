package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// usagePrefix is where Usage keeps one record per connector: when each
// user last used it. Sealed like the Registry's records: it says who
// used what.
const usagePrefix = "usage/"

// usageGrain is how fine a use's time is kept. A use within it of the
// last one recorded writes nothing, so that many calls at once on one
// connector do not all write one word of memory.
const usageGrain = time.Second

// Usage keeps when each user last used each connector, for the admin's
// details: in memory on the call path, where a use costs a map read and at
// most one atomic store, and in a Storage now and then (Flush), so that
// other instances and the next start see it. It never writes the
// Storage on a call. The zero Usage is ready.
type Usage struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	uses    sync.Map   // usageKey → *usageEntry
	flushMu sync.Mutex // one Flush at a time
}

// usageKey names one user's use of one connector.
type usageKey struct{ connector, user string }

// usageEntry is the last use of one key, in Unix nanoseconds, and the
// last one Flush stored.
type usageEntry struct {
	last    atomic.Int64
	flushed int64 // guarded by Usage.flushMu
}

// usageRecord is the stored form: each user's last use of one connector.
type usageRecord struct {
	Users map[string]time.Time `json:"users"`
}

// Touch records that user used connector now.
func (u *Usage) Touch(connector, user string) {
	now := u.now()
	k := usageKey{connector, user}
	if v, ok := u.uses.Load(k); ok {
		if e := v.(*usageEntry); now-e.last.Load() >= int64(usageGrain) {
			e.last.Store(now)
		}
		return
	}
	e := new(usageEntry)
	e.last.Store(now)
	if v, loaded := u.uses.LoadOrStore(k, e); loaded {
		v.(*usageEntry).last.Store(now)
	}
}

func (u *Usage) now() int64 {
	if u.Now != nil {
		return u.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// Last returns when user last used connector, or with no user, when
// anyone did: the newer of memory and s (nil: memory only). Zero means
// never, as far as either knows.
func (u *Usage) Last(ctx context.Context, s Storage, connector, user string) (time.Time, error) {
	var last int64
	u.uses.Range(func(k, v any) bool {
		if key := k.(usageKey); key.connector == connector && (user == "" || key.user == user) {
			last = max(last, v.(*usageEntry).last.Load())
		}
		return true
	})
	var t time.Time
	if last != 0 {
		t = time.Unix(0, last).UTC()
	}
	if s == nil {
		return t, nil
	}
	rec, _, err := readUsage(ctx, s, connector)
	for who, at := range rec.Users {
		if (user == "" || who == user) && at.After(t) {
			t = at
		}
	}
	return t, err
}

// Flush stores the uses made since the last Flush, each connector's in
// one write, merged with what the Storage holds: another instance's
// newer use of a connector is kept. A connector whose write fails is
// tried again at the next Flush.
func (u *Usage) Flush(ctx context.Context, s Storage) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	pending := map[string]map[string]*usageEntry{} // connector → user → entry
	u.uses.Range(func(k, v any) bool {
		key, e := k.(usageKey), v.(*usageEntry)
		if e.last.Load() > e.flushed {
			if pending[key.connector] == nil {
				pending[key.connector] = map[string]*usageEntry{}
			}
			pending[key.connector][key.user] = e
		}
		return true
	})
	var errs []error
	for _, connector := range slices.Sorted(maps.Keys(pending)) {
		errs = append(errs, flushUsage(ctx, s, connector, pending[connector]))
	}
	return errors.Join(errs...)
}

// Retain drops from memory the uses of every connector that keep does
// not keep, such as those no generation serves any more, so that no later
// Flush writes them again: a connector added later under the id would
// inherit them. When some go, it waits for a Flush under way, which may be
// writing them, so that a record deleted after Retain returns stays
// deleted.
func (u *Usage) Retain(keep func(connector string) bool) {
	var gone []usageKey
	u.uses.Range(func(k, _ any) bool {
		if key := k.(usageKey); !keep(key.connector) {
			gone = append(gone, key)
		}
		return true
	})
	if len(gone) == 0 {
		return // every rebuild asks: no lock unless something goes
	}
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	for _, k := range gone {
		u.uses.Delete(k)
	}
}

// DeleteUsage deletes the stored last uses of connector, for a connector
// removed; none stored is no error. Retain the memory of the Usage that
// flushes to s first, or its next Flush writes them back.
func DeleteUsage(ctx context.Context, s Storage, connector string) error {
	if err := s.Delete(ctx, usagePrefix+connector); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("deleting the last uses of %s: %w", connector, err)
	}
	return nil
}

// maxUsageAttempts bounds how many times a flush of one connector reads
// its record again after another instance wrote it first.
const maxUsageAttempts = 3

// flushUsage merges the uses of one connector into its record. On a
// store with versions the write is conditional on the version read, and
// made again on a fresh read when another instance flushed meanwhile:
// two instances flushing at once keep both's uses.
func flushUsage(ctx context.Context, s Storage, connector string, uses map[string]*usageEntry) error {
	for range maxUsageAttempts {
		stored, ok, err := mergeUsage(ctx, s, connector, uses)
		if err != nil {
			return fmt.Errorf("storing the last uses of %s: %w", connector, err)
		}
		if ok {
			for e, last := range stored {
				e.flushed = last
			}
			return nil
		}
	}
	return fmt.Errorf("storing the last uses of %s: it changed %d times while this instance flushed", connector, maxUsageAttempts)
}

// mergeUsage makes one attempt of flushUsage. It returns each entry's
// use that it stored, and false when another write came first.
func mergeUsage(ctx context.Context, s Storage, connector string, uses map[string]*usageEntry) (map[*usageEntry]int64, bool, error) {
	rec, version, err := readUsage(ctx, s, connector)
	if err != nil {
		return nil, false, err
	}
	if rec.Users == nil {
		rec.Users = map[string]time.Time{}
	}
	stored := map[*usageEntry]int64{}
	for user, e := range uses {
		last := e.last.Load()
		stored[e] = last
		if at := time.Unix(0, last).UTC(); at.After(rec.Users[user]) {
			rec.Users[user] = at
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, false, err
	}
	if vs, ok := s.(store.Versioned); ok {
		ok, err = vs.PutIfVersion(ctx, usagePrefix+connector, b, 0, version)
		return stored, ok, err
	}
	return stored, true, s.Put(ctx, usagePrefix+connector, b, 0)
}

// readUsage reads the stored last uses of connector, with the record's
// version on a store with versions (zero: none stored); none is the zero
// record.
func readUsage(ctx context.Context, s Storage, connector string) (usageRecord, uint64, error) {
	var rec usageRecord
	var b []byte
	var version uint64
	var err error
	if vs, ok := s.(store.Versioned); ok {
		b, version, err = vs.GetVersioned(ctx, usagePrefix+connector)
	} else {
		b, err = s.Get(ctx, usagePrefix+connector)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return rec, 0, nil
	case err != nil:
		return rec, 0, fmt.Errorf("reading the last uses of %s: %w", connector, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return usageRecord{}, 0, fmt.Errorf("decoding the last uses of %s: %v", connector, err)
	}
	return rec, version, nil
}
