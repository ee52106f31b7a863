package mcpmux_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// useLog is an Options.Used that keeps "connector/caller" for each use.
type useLog struct {
	mu   sync.Mutex
	uses []string
}

func (l *useLog) used(connector, caller string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.uses = append(l.uses, connector+"/"+caller)
}

// since returns the uses after the first n.
func (l *useLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.uses[n:])
}

func (l *useLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.uses)
}

// TestUsedOnCalls: each call the gateway sends upstream for a caller
// (tools/call, resources/read, prompts/get) is a use of its connector by
// that caller, in both eras, as is a credential asked for an HTTP API
// request; lists, and calls refused before they reach the upstream, are
// not.
func TestUsedOnCalls(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	conn := testConnector(t, "a", up, connectors.Auth{})
	log := new(useLog)
	g := startGateway(t, []*connectors.Connector{conn}, []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}},
		func(o *mcpmux.Options) { o.Used = log.used })
	for _, era := range eras {
		t.Run(era.Name, func(t *testing.T) {
			c := g.connect(t, "/mcp", "alice", "", era.Opts...)
			before := log.len()
			toolNames(t, c)
			if _, err := c.ListResources(ctxT(t), mcp.ListResourcesRequest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := callTool(t, c, "a_nope", nil); err == nil {
				t.Fatal("a tool that does not exist was called")
			}
			if got := log.since(before); len(got) != 0 {
				t.Fatalf("lists and a refused call were uses: %q", got)
			}
			if _, err := callTool(t, c, "a_echo", map[string]any{"message": "x"}); err != nil {
				t.Fatal(err)
			}
			read := mcp.ReadResourceRequest{}
			read.Params.URI = "test://a/readme"
			if _, err := c.ReadResource(ctxT(t), read); err != nil {
				t.Fatal(err)
			}
			prompt := mcp.GetPromptRequest{}
			prompt.Params.Name, prompt.Params.Arguments = "a_greet", map[string]string{"who": "x"}
			if _, err := c.GetPrompt(ctxT(t), prompt); err != nil {
				t.Fatal(err)
			}
			if got, want := log.since(before), []string{"a/alice", "a/alice", "a/alice"}; !slices.Equal(got, want) {
				t.Errorf("uses = %q, want %q", got, want)
			}
		})
	}

	before := log.len()
	cred, err := g.mux.Credential(ctxT(t), mcpmux.CredentialRequest{Caller: grants.Caller{ID: "bob"}, Connector: conn})
	if err != nil {
		t.Fatal(err)
	}
	// The refusal of that credential asks again for the same request.
	if _, err := g.mux.Credential(ctxT(t), mcpmux.CredentialRequest{Caller: grants.Caller{ID: "bob"}, Connector: conn, Refused: &cred}); err != nil {
		t.Fatal(err)
	}
	if got := log.since(before); !slices.Equal(got, []string{"a/bob"}) {
		t.Errorf("uses through the API = %q, want one by bob", got)
	}
}
