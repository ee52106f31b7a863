package audit

import (
	"fmt"
	"sync"
	"testing"
)

// TestHashArgsReusesItsMACs: HashArgs hashes as ArgsHash does, call after
// call and from many goroutines at once, although it reuses its keyed
// HMACs: no argument's hash depends on the one hashed before it.
func TestHashArgsReusesItsMACs(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	l := newLog(t, Options{ArgsKey: key})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				raw := []byte(fmt.Sprintf(`{"goroutine":%d,"call":%d}`, g, i%7))
				if got, want := l.HashArgs(raw), ArgsHash(key, raw); got != want || len(got) != 32 {
					t.Errorf("HashArgs(%s) = %q, want %q", raw, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := newLog(t, Options{}).HashArgs([]byte(`{}`)); got != "" {
		t.Errorf("HashArgs with no key = %q, want no trace", got)
	}
}

// BenchmarkHashArgs is the hash every audited tool call pays.
func BenchmarkHashArgs(b *testing.B) {
	l, err := New(Options{ArgsKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	raw := []byte(`{"message":"hello from the benchmark"}`)
	b.ReportAllocs()
	for b.Loop() {
		l.HashArgs(raw)
	}
}
