package mcpmux_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestListChangedAcrossInstances checks both halves of a cluster's
// list_changed: an instance tells of each one its upstream sends
// (OnListChanged), and one told of it by another fetches the lists
// again at once (ListChanged), however long its cache would have kept
// them.
func TestListChangedAcrossInstances(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	rules := []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"a"}}}
	var mu sync.Mutex
	var told []string
	a := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, rules, func(o *mcpmux.Options) {
		o.OnListChanged = func(connector, method string) {
			mu.Lock()
			told = append(told, connector+" "+method)
			mu.Unlock()
		}
	})
	b := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, rules, func(o *mcpmux.Options) {
		o.ListTTL = time.Hour
	})
	toolNames(t, a.connect(t, "/mcp", "alice", ""))
	toolNames(t, b.connect(t, "/mcp", "alice", ""))

	up.AddTool("added")
	eventually(t, 10*time.Second, "a tells of the upstream's list_changed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(told) > 0 && told[0] == "a notifications/tools/list_changed"
	})

	// Both instances hear this upstream themselves, and fetch again on
	// their own: let that settle, so that what follows is ListChanged's.
	before := toolLists(up)
	for settled := time.Now(); time.Since(settled) < 300*time.Millisecond; time.Sleep(50 * time.Millisecond) {
		if n := toolLists(up); n != before {
			before, settled = n, time.Now()
		}
	}
	b.mux.ListChanged("a", "notifications/tools/list_changed")
	eventually(t, 10*time.Second, "b fetches the tools again on the news", func() bool { return toolLists(up) > before })
	b.mux.ListChanged("a", "notifications/unknown")
	b.mux.ListChanged("nosuch", "notifications/tools/list_changed")
}

// toolLists counts the tools/list requests the upstream has seen.
func toolLists(up *testupstream.Server) int {
	n := 0
	for _, r := range up.Requests() {
		if strings.Contains(string(r.Body), `"tools/list"`) {
			n++
		}
	}
	return n
}
