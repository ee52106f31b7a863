package oauthflow

import (
	"context"
	"testing"
)

// BenchmarkToken measures the hot path: a cached, valid token.
func BenchmarkToken(b *testing.B) {
	h := newHarness(b, nil)
	h.connect(h.as, "notion", "alice")
	if _, err := h.token("notion", "alice"); err != nil {
		b.Fatal(err)
	}
	req := TokenRequest{Connector: "notion", User: "alice"}
	ctx := context.Background()
	gets := h.st.gets.Load()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.m.Token(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if n := h.st.gets.Load() - gets; n != 0 {
		b.Fatalf("the hot path read the store %d times", n)
	}
}

// BenchmarkTokenSerial is the same on one goroutine.
func BenchmarkTokenSerial(b *testing.B) {
	h := newHarness(b, nil)
	h.connect(h.as, "notion", "alice")
	req := TokenRequest{Connector: "notion", User: "alice"}
	ctx := context.Background()
	if _, err := h.m.Token(ctx, req); err != nil {
		b.Fatal(err)
	}
	gets := h.st.gets.Load()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.m.Token(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	if h.st.gets.Load() != gets {
		b.Fatal("the hot path read the store")
	}
}
