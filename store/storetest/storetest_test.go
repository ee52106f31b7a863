package storetest_test

import (
	"context"
	"errors"
	"hash/crc64"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/storetest"
)

// TestMemory runs the suite on the reference backend.
func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Shared { return store.NewMemory() })
}

// brokenEnv names, in a child process, the broken backend that
// TestBrokenBackend runs the suite on.
const brokenEnv = "STORETEST_BROKEN"

// broken lists backends that each break one part of the contract, and
// the cases of the suite that must catch it.
var broken = map[string]struct {
	open  func() store.Shared
	catch []string
}{
	"take-keeps": {
		func() store.Shared { return takeKeeps{store.NewMemory()} },
		[]string{"take-once"},
	},
	"create-overwrites": {
		func() store.Shared { return createOverwrites{store.NewMemory()} },
		[]string{"version-create-only"},
	},
	"version-by-value": {
		func() store.Shared { return versionByValue{store.NewMemory()} },
		[]string{"version-changes"},
	},
	"lease-shared": {
		func() store.Shared { return &leaseShared{Shared: store.NewMemory()} },
		[]string{"lease-held", "lease-exclusive"},
	},
	"notice-after-cancel": {
		func() store.Shared { return noticeAfterCancel{store.NewMemory()} },
		[]string{"notice-cancel"},
	},
	"list-unsorted": {
		func() store.Shared { return listUnsorted{store.NewMemory()} },
		[]string{"list"},
	},
}

// TestSuiteCatches checks that the suite fails each broken backend in the
// case meant for its fault. Each runs in a child process, since a test
// that fails cannot be undone in this one.
func TestSuiteCatches(t *testing.T) {
	for name, b := range broken {
		for _, c := range b.catch {
			t.Run(name+"/"+c, func(t *testing.T) {
				t.Parallel()
				cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenBackend$/^"+c+"$", "-test.count=1")
				cmd.Env = append(os.Environ(), brokenEnv+"="+name)
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || !strings.Contains(string(out), "--- FAIL: TestBrokenBackend/"+c) {
					t.Errorf("the case %s let the backend %s pass (%v):\n%s", c, name, err, out)
				}
			})
		}
	}
}

// TestBrokenBackend runs the suite on the broken backend named by
// brokenEnv, in the child process of TestSuiteCatches; without it there
// is nothing to run.
func TestBrokenBackend(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		return
	}
	storetest.Run(t, func(*testing.T) store.Shared { return broken[name].open() })
}

// takeKeeps reads on Take without deleting, so every Take wins.
type takeKeeps struct{ store.Shared }

func (s takeKeeps) Take(ctx context.Context, key string) ([]byte, error) { return s.Get(ctx, key) }

// createOverwrites makes a create-only write overwrite whatever is there.
type createOverwrites struct{ store.Shared }

func (s createOverwrites) PutIfVersion(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	if version == 0 {
		return true, s.Put(ctx, key, value, ttl)
	}
	return s.Shared.PutIfVersion(ctx, key, value, ttl, version)
}

// versionByValue versions a record by a hash of its value, so that
// writing the same value again keeps the version.
type versionByValue struct{ store.Shared }

func (s versionByValue) GetVersioned(ctx context.Context, key string) ([]byte, uint64, error) {
	v, err := s.Get(ctx, key)
	return v, crc64.Checksum(v, crc64.MakeTable(crc64.ECMA)) | 1, err
}

func (s versionByValue) PutIfVersion(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	_, current, err := s.GetVersioned(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		current, err = 0, nil
	}
	if err != nil || current != version {
		return false, err
	}
	return true, s.Put(ctx, key, value, ttl)
}

// leaseShared grants every Acquire, whoever holds the lease.
type leaseShared struct {
	store.Shared
	tokens atomic.Uint64
}

func (s *leaseShared) Acquire(_ context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return store.Lease{}, store.ErrInvalidKey
	}
	return store.Lease{Name: name, Holder: holder, Token: s.tokens.Add(1), Expires: time.Now().Add(ttl)}, nil
}

// noticeAfterCancel keeps delivering after the subscriber's context ends.
type noticeAfterCancel struct{ store.Shared }

func (s noticeAfterCancel) Subscribe(_ context.Context, channel string, fn func(string)) error {
	return s.Shared.Subscribe(context.Background(), channel, fn)
}

// listUnsorted lists in reverse order.
type listUnsorted struct{ store.Shared }

func (s listUnsorted) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := s.Shared.List(ctx, prefix)
	slices.Reverse(keys)
	return keys, err
}
