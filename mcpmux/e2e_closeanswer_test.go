package mcpmux_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// pingingUpstream is a legacy upstream whose notification stream carries
// one ping, and which takes its time reading the answer. It counts the
// connections open to it and reports the answer's arrival on answered.
type pingingUpstream struct {
	srv      *httptest.Server
	answered chan struct{}
	mu       sync.Mutex
	open     map[net.Conn]bool
}

func startPingingUpstream(t *testing.T) *pingingUpstream {
	t.Helper()
	p := &pingingUpstream{answered: make(chan struct{}, 1), open: map[net.Conn]bool{}}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if s == http.StateClosed || s == http.StateHijacked {
			delete(p.open, c)
		} else {
			p.open[c] = true
		}
	}
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

// conns returns how many connections are open to the upstream.
func (p *pingingUpstream) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}

func (p *pingingUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"up-1\",\"method\":\"ping\"}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	body, _ := io.ReadAll(r.Body)
	id := bytes.TrimSpace(member(body, "id"))
	switch method := string(bytes.Trim(member(body, "method"), `"`)); {
	case method == "initialize":
		w.Header().Set("Mcp-Session-Id", "s1")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"pinging","version":"1"}}}`, id)
	case method == "tools/list":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"t","inputSchema":{"type":"object"}}]}}`, id)
	case method == "" && string(id) == `"up-1"`:
		// The answer to the ping, which this upstream is slow to take.
		p.answered <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(4 * time.Second):
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

// member returns the raw JSON of a top-level member of a JSON object.
func member(body []byte, name string) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil
	}
	return m[name]
}

// TestCloseEndsUpstreamAnswer: the gateway's answer to a request an
// upstream sent on its notification stream is the Mux's to wait for or
// end. From a goroutine of its own it outlived Close, with a bound of its
// own (10 s) and not the Mux's, holding a request open to the upstream
// after the gateway had closed.
func TestCloseEndsUpstreamAnswer(t *testing.T) {
	t.Parallel()
	up := startPingingUpstream(t)
	u, err := url.Parse(up.srv.URL + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	c := &connectors.Connector{ID: "pinging", URL: u, Timeout: 2 * time.Second}
	g := startGateway(t, []*connectors.Connector{c}, everyone)
	agent := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if r := agent.call("tools/list", nil); r.err != nil {
		t.Fatalf("tools/list: %d %s", r.status, r.body)
	}
	select {
	case <-up.answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream's ping was not answered")
	}
	g.mux.Close()
	deadline := time.Now().Add(2 * time.Second)
	for up.conns() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the upstream open after the gateway closed", up.conns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
