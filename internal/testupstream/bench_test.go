package testupstream

import (
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// BenchmarkEcho measures a tools/call of echo through an mcp-go client, with
// and without request recording.
func BenchmarkEcho(b *testing.B) {
	for _, noRecord := range []bool{false, true} {
		name := "record"
		if noRecord {
			name = "no-record"
		}
		b.Run(name, func(b *testing.B) {
			up := StartT(b, Options{NoRecord: noRecord})
			c := connect(b, up.URL, modernClient)
			req := mcp.CallToolRequest{}
			req.Params.Name = "echo"
			req.Params.Arguments = map[string]any{"message": "hi"}
			for b.Loop() {
				if _, err := c.CallTool(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
