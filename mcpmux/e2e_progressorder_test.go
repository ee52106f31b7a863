package mcpmux_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// splitUpstream is a legacy MCP upstream that scatters one call's progress
// over two streams, as a legacy mcp-go session may: progress 2 on the
// session's GET stream and, once the agent has seen it, progress 1 and 3
// and the result on the call's own stream. So the gateway reads a stale
// progress after a newer one, in an order no race decides.
type splitUpstream struct {
	t      *testing.T
	events chan []byte   // written to the GET stream
	seen   chan struct{} // closed when the agent has seen progress 2
}

// startSplitUpstream serves a splitUpstream on loopback.
func startSplitUpstream(t *testing.T) (*splitUpstream, *url.URL) {
	up := &splitUpstream{t: t, events: make(chan []byte, 4), seen: make(chan struct{})}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return up, u
}

func (up *splitUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		up.stream(w, r)
		return
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Meta struct {
				ProgressToken json.RawMessage `json:"progressToken"`
			} `json:"_meta"`
		} `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch msg.Method {
	case "initialize":
		w.Header().Set("Mcp-Session-Id", "split-session")
		splitAnswer(w, msg.ID, `{"protocolVersion":"`+v20251125+`","capabilities":{"tools":{}},"serverInfo":{"name":"split","version":"1"}}`)
	case "tools/list":
		splitAnswer(w, msg.ID, `{"tools":[{"name":"steps","inputSchema":{"type":"object"}}]}`)
	case "tools/call":
		up.call(w, r, msg.ID, msg.Params.Meta.ProgressToken)
	default:
		if msg.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(msg.ID) + `,"error":{"code":-32601,"message":"no"}}`))
	}
}

// stream serves the session's GET stream.
func (up *splitUpstream) stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case ev := <-up.events:
			_, _ = w.Write(ev)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// call answers tools/call: progress 2 on the GET stream, then, once the
// agent has it, progress 1 and 3 and the result on this stream.
func (up *splitUpstream) call(w http.ResponseWriter, r *http.Request, id, token json.RawMessage) {
	up.events <- progressEvent(token, 2)
	select {
	case <-up.seen:
	case <-r.Context().Done():
		return
	case <-time.After(5 * time.Second):
		up.t.Error("the agent never saw the progress sent on the GET stream")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, ev := range [][]byte{progressEvent(token, 1), progressEvent(token, 3),
		[]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":" + string(id) + `,"result":{"content":[{"type":"text","text":"done"}]}}` + "\n\n")} {
		_, _ = w.Write(ev)
		w.(http.Flusher).Flush()
	}
}

// progressEvent is an SSE event carrying progress p of 3 for token.
func progressEvent(token json.RawMessage, p int) []byte {
	return []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":" +
		string(token) + `,"progress":` + strconv.Itoa(p) + `,"total":3}}` + "\n\n")
}

// splitAnswer writes a JSON-RPC result as plain JSON.
func splitAnswer(w http.ResponseWriter, id json.RawMessage, result string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":` + result + `}`))
}

// TestProgressOrderAcrossStreams checks that progress reaches the agent in
// the upstream's order when a legacy upstream sends it over two streams
// that the gateway reads at once: a notification that arrives after a
// later one is dropped, never delivered behind it.
func TestProgressOrderAcrossStreams(t *testing.T) {
	t.Parallel()
	up, u := startSplitUpstream(t)
	g := startGateway(t, []*connectors.Connector{{ID: "s", URL: u, Timeout: 5 * time.Second}}, everyone)
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	c.result("tools/list", nil)

	body, h := c.request(1, "tools/call", map[string]any{"name": "s_steps", "arguments": map[string]any{},
		"_meta": map[string]any{"progressToken": "tok"}})
	resp, err := c.hc.Do(c.newRequest(http.MethodPost, bytes.NewReader(body), int64(len(body)), h))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []float64
	var answered bool
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !answered {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		var msg struct {
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Params struct {
				ProgressToken string  `json:"progressToken"`
				Progress      float64 `json:"progress"`
			} `json:"params"`
		}
		decodeInto(t, data, &msg)
		switch {
		case msg.Result != nil:
			answered = true
		case msg.Method == "notifications/progress":
			if msg.Params.ProgressToken != "tok" {
				t.Errorf("progress token = %q", msg.Params.ProgressToken)
			}
			if got = append(got, msg.Params.Progress); len(got) == 1 {
				close(up.seen)
			}
		}
	}
	if !answered {
		t.Fatalf("no result; progress %v, %v", got, sc.Err())
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("progress reached the agent as %v, want [2 3]", got)
	}
}
