package connectors_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// liveGateway serves a registry's connectors through a Mux rebuilt at
// each change the registry announces, as the app does: the watcher runs
// under the registry's lock and closes the Mux it replaces, as
// gateway.Live.Set closes a generation that serves no request, which
// waits for the list fetches under way on it.
type liveGateway struct {
	r      *connectors.Registry
	mux    atomic.Pointer[mcpmux.Mux]
	srv    *httptest.Server
	onDrft func(kind connectors.PinKind, connector, name string, raw json.RawMessage)
	// rebuilding, when set, is called in the watcher before the old Mux
	// closes, with the registry's lock held.
	rebuilding func()
	// stuck is set when the test found a deadlock, which the cleanup
	// must not wait for: the test fails rather than hangs.
	stuck atomic.Bool
}

// newLiveGateway opens a registry on a sealed memory store, with o, and
// serves it.
func newLiveGateway(t *testing.T, o connectors.Options) *liveGateway {
	t.Helper()
	return newLiveGatewayOn(t, o, nil)
}

// newLiveGatewayOn is newLiveGateway with the store wrapped by wrap,
// unless nil.
func newLiveGatewayOn(t *testing.T, o connectors.Options, wrap func(connectors.Storage) connectors.Storage) *liveGateway {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	ring, err := store.NewRing([][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	r, err := connectors.NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	g := &liveGateway{r: r}
	r.Watch(g.rebuild)
	var st connectors.Storage = store.Seal(store.NewMemory(), ring)
	if wrap != nil {
		st = wrap(st)
	}
	if err := r.Open(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		g.mux.Load().ServeMCP(w, req, grants.Caller{ID: req.Header.Get("X-Test-User")}, "")
	}))
	t.Cleanup(func() {
		if g.stuck.Load() {
			return // closing would wait for the deadlocked goroutines
		}
		g.srv.Close()
		r.Close()
		if m := g.mux.Load(); m != nil {
			_ = m.Close()
		}
	})
	return g
}

// rebuild is the registry's watcher.
func (g *liveGateway) rebuild(snap *connectors.Snapshot) error {
	var conns []*connectors.Connector
	for _, e := range snap.Entries {
		c, err := snap.Connector(e)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	policy, err := grants.New([]grants.Rule{{Sources: []string{"user:alice"}, Connectors: []string{"*"}}})
	if err != nil {
		return err
	}
	// Lists are fetched again for each agent request, so that each sees
	// the upstream as it is, and tells OnDrift again.
	m, err := mcpmux.New(mcpmux.Options{Connectors: conns, Policy: policy, OnDrift: g.drifted, ListTTL: time.Nanosecond})
	if err != nil {
		return err
	}
	if f := g.rebuilding; f != nil {
		f()
	}
	if old := g.mux.Swap(m); old != nil {
		_ = old.Close()
	}
	return nil
}

// drifted is every Mux's OnDrift.
func (g *liveGateway) drifted(kind connectors.PinKind, connector, name string, raw json.RawMessage) {
	if g.onDrft != nil {
		g.onDrft(kind, connector, name, raw)
	}
}

// selectAll adds connector id of up and selects every tool and prompt
// it lists now, pinned.
func (g *liveGateway) selectAll(t *testing.T, id string, up *testupstream.Server) {
	t.Helper()
	ctx := context.Background()
	if _, err := g.r.Add(ctx, connectors.AddRequest{Config: connectors.Config{ID: id, URL: up.URL}}); err != nil {
		t.Fatal(err)
	}
	listed, err := g.mux.Load().UpstreamTools(ctx, grants.Caller{ID: "alice"}, id)
	if err != nil {
		t.Fatal(err)
	}
	prompts, err := g.mux.Load().UpstreamPrompts(ctx, grants.Caller{ID: "alice"}, id)
	if err != nil {
		t.Fatal(err)
	}
	all := []connectors.Want{{Name: "*"}}
	if _, err := g.r.SelectItems(ctx, id, connectors.SelectionRequest{Tools: all, ListedTools: listed, Prompts: all, ListedPrompts: prompts}); err != nil {
		t.Fatal(err)
	}
}

// tools lists the tool names alice sees now.
func (g *liveGateway) tools(t *testing.T) []string {
	t.Helper()
	return agenttest.ToolNames(t, g.agent(t))
}

// prompts lists the prompt names alice sees now.
func (g *liveGateway) prompts(t *testing.T) []string {
	t.Helper()
	return agenttest.PromptNames(t, g.agent(t))
}

// agent connects alice.
func (g *liveGateway) agent(t *testing.T) *client.Client {
	t.Helper()
	return agenttest.Dial(t, g.srv.URL, map[string]string{"X-Test-User": "alice"})
}

// changeDescription re-registers tool of up with a new description, as
// an upstream that changed under the gateway would.
func changeDescription(t *testing.T, up *testupstream.Server, tool, desc string) json.RawMessage {
	t.Helper()
	st := up.MCP.GetTool(tool)
	if st == nil {
		t.Fatalf("no tool %s", tool)
	}
	st.Tool.Description = desc
	up.MCP.AddTools(*st)
	raw, err := json.Marshal(st.Tool)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestDriftDuringApproval checks that a list fetch which sees drift while
// an admin's approval rebuilds the gateway cannot deadlock: the approval
// holds the registry's lock while the gateway it replaces closes, which
// waits for that fetch, which is recording the drift it saw. The drifted
// tool is hidden at once, and its drift recorded soon after.
func TestDriftDuringApproval(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "wiki"})
	g := newLiveGateway(t, connectors.Options{})
	g.selectAll(t, "wiki", up)
	ctx := context.Background()

	// echo drifted earlier and is recorded, for the admin to approve;
	// fail drifts now, seen by the fetch the approval will wait for.
	echoRaw := changeDescription(t, up, "echo", "Echoes, and more.")
	if news, err := g.r.Drifted(ctx, "wiki", "echo", echoRaw); !news || err != nil {
		t.Fatalf("recording echo's drift: %v, %v", news, err)
	}
	changeDescription(t, up, "fail", "Fails, and more.")

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	g.onDrft = func(kind connectors.PinKind, connector, name string, raw json.RawMessage) {
		if name == "fail" {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
		g.r.QueueDrift(kind, connector, name, raw) // as the app's OnDrift does
	}
	// The agent whose list started the fetch goes away while the fetch is
	// held: the fetch goes on in the background, where no request keeps
	// the gateway from closing.
	agent := g.agent(t)
	listCtx, cancelList := context.WithCancel(ctx)
	listed := make(chan error, 1)
	go func() {
		_, err := agent.ListTools(listCtx, mcp.ListToolsRequest{})
		listed <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the list fetch never saw fail's drift")
	}
	cancelList()
	<-listed

	// The fetch records its drift once the approval holds the lock and
	// the old gateway is closing.
	g.rebuilding = func() { closeOnce(release) }
	approved := make(chan error, 1)
	go func() {
		_, _, err := g.r.ApproveItems(ctx, "wiki", connectors.Approval{Tools: []string{"echo"}})
		approved <- err
	}()
	select {
	case err := <-approved:
		if err != nil {
			t.Fatalf("approving echo: %v", err)
		}
	case <-time.After(10 * time.Second):
		g.stuck.Store(true)
		t.Fatal("deadlock: the approval waits for the gateway to close, which waits for a list fetch recording a drift, which waits for the approval's lock")
	}
	g.rebuilding = nil

	// fail is hidden from the first list on, whether or not its drift is
	// recorded yet; echo is back.
	if names := g.tools(t); slices.Contains(names, "wiki_fail") || !slices.Contains(names, "wiki_echo") {
		t.Fatalf("tools after the approval = %v, want wiki_echo and no wiki_fail", names)
	}
	wait.Until(t, 5*time.Second, "fail's drift recorded", func() bool {
		return slices.Equal(g.r.Snapshot().Selection("wiki").Drifted(), []string{"fail"})
	})
}

// gatedStorage holds each write of a tool selection, when gate is set,
// until gate is closed, telling held first: a record of drift that the
// store is slow to take.
type gatedStorage struct {
	connectors.Storage
	gate atomic.Pointer[chan struct{}]
	held chan string
}

func (s *gatedStorage) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if gate := s.gate.Load(); gate != nil && strings.HasPrefix(key, "tools/") {
		select {
		case s.held <- key:
		default:
		}
		<-*gate
	}
	return s.Storage.Put(ctx, key, value, ttl)
}

// noticeLog records what Options.DriftSeen is told.
type noticeLog struct {
	mu    sync.Mutex
	notes []connectors.DriftNotice
}

func (l *noticeLog) add(n connectors.DriftNotice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notes = append(l.notes, n)
}

func (l *noticeLog) all() []connectors.DriftNotice {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.notes)
}

// TestDriftSeenOnce checks, with a real upstream whose tool and prompt
// drift, that the drift the gateway sees is hidden at once, before and
// whatever its record (here held by a slow store, under the registry's
// lock); recorded in the background; and told once per distinct drifted
// definition, with the names of the fields that changed, however many
// list fetches see it.
func TestDriftSeenOnce(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "wiki"})
	notes := &noticeLog{}
	gated := &gatedStorage{held: make(chan string, 1)}
	g := newLiveGatewayOn(t, connectors.Options{DriftSeen: notes.add}, func(s connectors.Storage) connectors.Storage {
		gated.Storage = s
		return gated
	})
	g.onDrft = g.r.QueueDrift
	g.selectAll(t, "wiki", up)

	changeDescription(t, up, "fail", "Fails, and more.")
	gate := make(chan struct{})
	gated.gate.Store(&gate)
	t.Cleanup(func() { closeOnce(gate) }) // before the registry closes, should the test fail
	if names := g.tools(t); slices.Contains(names, "wiki_fail") || !slices.Contains(names, "wiki_echo") {
		t.Fatalf("tools = %v, want wiki_echo and no wiki_fail", names)
	}
	select {
	case <-gated.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the drift was never recorded")
	}
	// The record is held, the registry's lock with it: the gateway lists
	// on, fail hidden.
	if names := g.tools(t); slices.Contains(names, "wiki_fail") {
		t.Fatalf("tools while the drift's record is held = %v, want no wiki_fail", names)
	}
	gated.gate.Store(nil)
	close(gate)
	wait.Until(t, 5*time.Second, "fail's drift recorded", func() bool {
		return slices.Equal(g.r.Snapshot().Selection("wiki").Drifted(), []string{"fail"})
	})
	for range 3 {
		g.tools(t) // each fetch sees fail's drift again
	}

	// A new definition of fail is told again, and so is a prompt's drift.
	st := up.MCP.GetTool("fail")
	st.Tool.Title, st.Tool.Description = "Failure", "Fails, and more still."
	up.MCP.AddTools(*st)
	up.MCP.AddPrompt(mcp.NewPrompt("plain", mcp.WithPromptDescription("A prompt that says more.")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) { return nil, nil })
	for range 3 {
		if names := g.tools(t); slices.Contains(names, "wiki_fail") {
			t.Fatalf("tools = %v, want no wiki_fail", names)
		}
		if names := g.prompts(t); slices.Contains(names, "wiki_plain") || !slices.Contains(names, "wiki_greet") {
			t.Fatalf("prompts = %v, want wiki_greet and no wiki_plain", names)
		}
	}
	g.r.Close() // waits for the work queued
	want := []connectors.DriftNotice{
		{Connector: "wiki", Kind: connectors.ToolPin, Name: "fail", Fields: []string{"description"}},
		{Connector: "wiki", Kind: connectors.ToolPin, Name: "fail", Fields: []string{"description", "title"}},
		{Connector: "wiki", Kind: connectors.PromptPin, Name: "plain", Fields: []string{"description"}},
	}
	// The tool's and the prompt's lists are fetched apart: their drifts
	// may be told in either order.
	got := notes.all()
	slices.SortStableFunc(got, func(a, b connectors.DriftNotice) int { return strings.Compare(string(b.Kind), string(a.Kind)) })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("drift told = %+v, want %+v", got, want)
	}
	if sel := g.r.Snapshot().Selection("wiki"); !slices.Equal(sel.DriftedPrompts(), []string{"plain"}) {
		t.Fatalf("drifted prompts = %v, want plain", sel.DriftedPrompts())
	}
}

// closeOnce closes ch unless it is closed.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
