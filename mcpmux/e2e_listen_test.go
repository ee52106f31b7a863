package mcpmux_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestListenAck opens subscriptions/listen over raw HTTP and checks the
// stream as the 2026-07-28 Subscriptions pattern has it: the first frame
// is the acknowledgement, which names only the notifications the gateway
// will send (not the resource subscriptions it does not take, nor what
// was not asked for), every frame carries the request's id as the
// subscription id, whatever its JSON type, and a notification the filter
// did not ask for is never sent.
func TestListenAck(t *testing.T) {
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, everyone)
	c := newRaw(t, g.URL+"/mcp", agentHeader("alice", ""))
	c.version = v20260728
	for _, id := range []any{7, "sub-1"} {
		// The gateway has lists to compare with.
		c.result("tools/list", nil)
		c.result("prompts/list", nil)
		ctx, cancel := context.WithCancel(ctxT(t))
		body, h := c.request(id, "subscriptions/listen", map[string]any{"notifications": map[string]any{
			"toolsListChanged": true, "promptsListChanged": false, "resourceSubscriptions": []string{"test://a/readme"},
		}})
		req := c.newRequest(http.MethodPost, bytes.NewReader(body), int64(len(body)), h).WithContext(ctx)
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		frames := make(chan json.RawMessage, 8)
		go func() {
			defer close(frames)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					frames <- json.RawMessage(data)
				}
			}
		}()
		next := func() json.RawMessage {
			select {
			case f := <-frames:
				return f
			case <-time.After(3 * time.Second):
				t.Fatal("no frame in 3 s")
			}
			return nil
		}
		wantID, _ := json.Marshal(id)
		var ack struct {
			Method string `json:"method"`
			Params struct {
				Notifications map[string]any             `json:"notifications"`
				Meta          map[string]json.RawMessage `json:"_meta"`
			} `json:"params"`
		}
		if err := json.Unmarshal(next(), &ack); err != nil || ack.Method != "notifications/subscriptions/acknowledged" {
			t.Fatalf("first frame is not the acknowledgement: %v %+v", err, ack)
		}
		if got := string(ack.Params.Meta[mcp.MetaKeySubscriptionID]); got != string(wantID) {
			t.Errorf("acknowledgement's subscription id %s, want %s", got, wantID)
		}
		if len(ack.Params.Notifications) != 1 || ack.Params.Notifications["toolsListChanged"] != true {
			t.Errorf("acknowledged %v, want only toolsListChanged", ack.Params.Notifications)
		}
		// Prompts were not asked for: their change must not come, and the
		// tools change after it is the next frame.
		ups["a"].MCP.AddPrompt(mcp.NewPrompt("p"+string(wantID)), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
		time.Sleep(100 * time.Millisecond)
		ups["a"].AddTool("t" + strings.Trim(string(wantID), `"`))
		var note struct {
			Method string `json:"method"`
			Params struct {
				Meta map[string]json.RawMessage `json:"_meta"`
			} `json:"params"`
		}
		if err := json.Unmarshal(next(), &note); err != nil || note.Method != string(mcp.MethodNotificationToolsListChanged) {
			t.Fatalf("after the acknowledgement: %v %+v, want tools/list_changed", err, note)
		}
		if got := string(note.Params.Meta[mcp.MetaKeySubscriptionID]); got != string(wantID) {
			t.Errorf("notification's subscription id %s, want %s", got, wantID)
		}
		cancel()
		resp.Body.Close()
	}
}

// unwrapOnly wraps a ResponseWriter as Caddy's handlers do: it does not
// flush itself, and reaches the writer beneath through Unwrap.
type unwrapOnly struct{ http.ResponseWriter }

func (w unwrapOnly) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestStreamFlushedThroughWrappers opens subscriptions/listen behind a
// writer wrapper that has no Flush of its own, as in Caddy, and checks
// that the acknowledgement arrives while the stream stays open: an event
// left in a buffer until the answer ends would never arrive.
func TestStreamFlushedThroughWrappers(t *testing.T) {
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, everyone)
	inner := g.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(unwrapOnly{w}, r)
	}))
	t.Cleanup(srv.Close)
	c := newRaw(t, srv.URL+"/mcp", agentHeader("alice", ""))
	c.version = v20260728
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	body, h := c.request(1, "subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}})
	resp, err := c.hc.Do(c.newRequest(http.MethodPost, bytes.NewReader(body), int64(len(body)), h).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "notifications/subscriptions/acknowledged") {
			return
		}
	}
	t.Fatalf("no acknowledgement while the stream was open: %v", sc.Err())
}
