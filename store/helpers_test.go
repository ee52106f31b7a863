package store

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

// testKey returns a distinct, fixed seal key for each n.
func testKey(n int) []byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "mcpgate test seal key %d", n))
	return sum[:]
}

// testRing returns a ring of the test keys numbered ns, the first sealing.
func testRing(t testing.TB, ns ...int) *Ring {
	t.Helper()
	var keys [][]byte
	for _, n := range ns {
		keys = append(keys, testKey(n))
	}
	r, err := NewRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// deterministic makes r seal with a fixed stream of "randomness", so that
// every process (fuzz workers included) produces the same records.
func deterministic(r *Ring) *Ring {
	r.rand = rand.NewChaCha8([32]byte{'m', 'c', 'p', 'g', 'a', 't', 'e'})
	return r
}

// noCount stands for Sealed's count of wraps, for tests of the Ring alone.
func noCount() error { return nil }

// openBadger opens a Badger in dir and closes it when the test ends.
func openBadger(t testing.TB, dir string) *Badger {
	t.Helper()
	b, err := OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}
