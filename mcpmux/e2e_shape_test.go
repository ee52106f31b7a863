package mcpmux_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestResultShape checks what a 2026-07-28 agent's schema requires of
// every result, from upstreams of either era: a resultType, and on lists
// and reads the caching hints ttlMs and cacheScope, where the scope is
// never public (the view is the caller's) and a list's ttlMs is what is
// left of the gateway's list cache. A legacy agent gets no hints.
func TestResultShape(t *testing.T) {
	for _, upEra := range []testupstream.Era{testupstream.LegacyOnly, testupstream.ModernOnly} {
		t.Run(upEra.String(), func(t *testing.T) {
			_, conns := startUpstreams(t, upEra, "a")
			var mu sync.Mutex
			now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			g := startGateway(t, conns, everyone, func(o *mcpmux.Options) {
				o.ListTTL = time.Minute
				o.Now = clock
			})
			modern := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20260728)
			legacy := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
			type shape struct {
				ResultType *string `json:"resultType"`
				TTLMs      *int64  `json:"ttlMs"`
				CacheScope *string `json:"cacheScope"`
			}
			read := func(raw json.RawMessage) shape {
				var s shape
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatal(err)
				}
				return s
			}
			calls := []struct {
				method string
				params map[string]any
				ttl    int64 // -1: no caching hints
			}{
				{"server/discover", map[string]any{}, -1},
				{"tools/list", nil, 60000},
				{"prompts/list", nil, 60000},
				{"resources/list", nil, 60000},
				{"resources/templates/list", nil, 60000},
				{"resources/read", map[string]any{"uri": "test://a/readme"}, 0},
				{"tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}}, -1},
				{"prompts/get", map[string]any{"name": "a_plain"}, -1},
			}
			for _, c := range calls {
				s := read(modern.result(c.method, c.params))
				if s.ResultType == nil || *s.ResultType != "complete" {
					t.Errorf("%s: resultType %v, want complete", c.method, s.ResultType)
				}
				switch {
				case c.ttl < 0 && (s.TTLMs != nil || s.CacheScope != nil):
					t.Errorf("%s: caching hints on a result that takes none", c.method)
				case c.ttl >= 0 && (s.TTLMs == nil || *s.TTLMs != c.ttl):
					t.Errorf("%s: ttlMs %v, want %d", c.method, s.TTLMs, c.ttl)
				case c.ttl >= 0 && (s.CacheScope == nil || *s.CacheScope != "private"):
					t.Errorf("%s: cacheScope %v, want private", c.method, s.CacheScope)
				}
				if c.method == "server/discover" {
					continue
				}
				if upEra == testupstream.LegacyOnly {
					if l := read(legacy.result(c.method, c.params)); l.TTLMs != nil || l.CacheScope != nil || l.ResultType != nil {
						t.Errorf("%s: a legacy agent got 2026-07-28 members from a legacy upstream", c.method)
					}
				}
			}
			// A cached list may be kept only as long as the gateway keeps it.
			mu.Lock()
			now = now.Add(45 * time.Second)
			mu.Unlock()
			if s := read(modern.result("tools/list", nil)); s.TTLMs == nil || *s.TTLMs != 15000 {
				t.Errorf("tools/list 45 s later: ttlMs %v, want 15000", s.TTLMs)
			}
		})
	}
}
