package mcpgate

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// FuzzCaddyfile adapts arbitrary mcpgate blocks: the parser must never
// panic, whatever it is given.
func FuzzCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"{\n\tmcpgate {\n\t\tconnector a {\n\t\t\turl http://127.0.0.1/mcp\n\t\t}\n\t}\n}\n",
		"{\n\tmcpgate {\n\t\tgrant {\n\t\t\tsrc *\n\t\t\ttools a/**\n\t\t}\n\t}\n}\n",
		"{\n\tmcpgate {\n\t\tconnector a {\n\t\t\turl {env.X}\n\t\t\tauth header X-K {file./k}\n\t\t\ttools {\n\t\t\t\tallow x\n\t\t\t\toperation x read\n\t\t\t}\n\t\t}\n\t}\n}\n",
		"{\n\tmcpgate {\n\t\tidentity local\n\t\ttool_separator __\n\t\tmax_request_body 1MiB\n\t}\n}\n:80 {\n\tmcpgate\n}\n",
		"{\n\tmcpgate {\n\t\tstorage badger /x\n\t\tseal_key {env.K}\n\t\tallowed_redirects https://a.example\n\t\tconnector a {\n\t\t\turl https://a.example/mcp\n\t\t\tauth oauth {\n\t\t\t\tregistration static\n\t\t\t\tclient_id c\n\t\t\t\tclient_secret s\n\t\t\t\tscopes \"a b\"\n\t\t\t\tinsecure_loopback\n\t\t\t}\n\t\t}\n\t}\n}\n",
	} {
		f.Add(seed)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	f.Fuzz(func(t *testing.T, input string) {
		_, _, _ = adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
	})
}
