package mcpmux_test

import (
	"encoding/base64"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestPagination checks that small pages of the aggregated lists hand out
// every item exactly once, and that a cursor the gateway did not hand out
// is refused.
func TestPagination(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	whole := startGateway(t, conns, everyone)
	paged := startGateway(t, conns, everyone, func(o *mcpmux.Options) { o.PageSize = 3 })
	all := listed(t, dialRaw(t, whole.URL+"/mcp", agentHeader("alice", ""), v20251125).result("tools/list", nil), "tools", "name")
	if len(all) != 2*len(catalogTools)+1 {
		t.Fatalf("one page holds %d tools", len(all))
	}

	for _, era := range eras {
		t.Run(era.Name, func(t *testing.T) {
			c := paged.connect(t, "/mcp", "alice", "", era.Opts...)
			var got []string
			req := mcp.ListToolsRequest{}
			for pages := 1; ; pages++ {
				res, err := c.ListToolsByPage(ctxT(t), req)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Tools) > 3 {
					t.Fatalf("page %d holds %d tools", pages, len(res.Tools))
				}
				for _, tool := range res.Tools {
					got = append(got, tool.Name)
				}
				if res.NextCursor == "" {
					break
				}
				if pages > len(all) {
					t.Fatal("the cursors never end")
				}
				req.Params.Cursor = res.NextCursor
			}
			if !slices.Equal(got, all) {
				t.Errorf("paged tools = %v, want %v", got, all)
			}
		})
	}

	for _, era := range rawEras {
		t.Run("raw/"+era.Name, func(t *testing.T) {
			c := dialRaw(t, paged.URL+"/mcp", agentHeader("alice", ""), era.version)
			var uris []string
			params := map[string]any{}
			for range 10 {
				res := c.result("resources/list", params)
				uris = append(uris, listed(t, res, "resources", "uri")...)
				var next struct {
					NextCursor string `json:"nextCursor"`
				}
				decodeInto(t, res, &next)
				if next.NextCursor == "" {
					break
				}
				params = map[string]any{"cursor": next.NextCursor}
			}
			if len(uris) != 6 || len(slices.Compact(slices.Sorted(slices.Values(uris)))) != 6 {
				t.Errorf("paged resources = %v", uris)
			}
			for _, cursor := range []any{"garbage", base64.RawURLEncoding.EncodeToString([]byte("mcpgate:-3")), "", 42, map[string]any{}} {
				r := c.call("tools/list", map[string]any{"cursor": cursor})
				if r.code() != -32602 {
					t.Errorf("cursor %v: %d %s", cursor, r.status, r.body)
				}
			}
		})
	}
}

// fakeClock is a clock a test can move forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time                { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration)       { c.offset.Add(int64(d)) }
func (c *fakeClock) option() func(*mcpmux.Options) { return func(o *mcpmux.Options) { o.Now = c.now } }

// TestListCache checks that upstream lists are fetched once per ListTTL,
// by every agent and every call alike.
func TestListCache(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	clock := &fakeClock{}
	g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone,
		clock.option(), func(o *mcpmux.Options) { o.ListTTL = time.Minute })
	legacy := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	modern := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20260728)

	legacy.result("tools/list", nil)
	if n := countMethod(up, "tools/list"); n != 1 {
		t.Fatalf("first tools/list: the upstream saw %d", n)
	}
	legacy.result("tools/list", nil)
	modern.result("tools/list", nil)
	legacy.result("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}})
	if n := countMethod(up, "tools/list"); n != 1 {
		t.Fatalf("within the TTL: the upstream saw %d tools/list", n)
	}
	clock.advance(59 * time.Second)
	modern.result("tools/list", nil)
	if n := countMethod(up, "tools/list"); n != 1 {
		t.Fatalf("just before the TTL: the upstream saw %d tools/list", n)
	}
	clock.advance(2 * time.Second)
	modern.result("tools/list", nil)
	legacy.result("tools/list", nil)
	if n := countMethod(up, "tools/list"); n != 2 {
		t.Fatalf("past the TTL: the upstream saw %d tools/list, want 2", n)
	}
}
