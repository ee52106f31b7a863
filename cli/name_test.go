package cli

import (
	"testing"

	"github.com/spf13/cobra"
)

// TestNameFlagOnConnectors checks that --name, the AGP alias of a
// connector's id, is on every connectors command that takes an id and on
// no other: a grant's id names no connector.
func TestNameFlagOnConnectors(t *testing.T) {
	root := &cobra.Command{Use: "mcpgate"}
	buildCLI(root)
	for _, tc := range []struct {
		path []string
		want bool
	}{
		{[]string{"connectors", "show"}, true},
		{[]string{"connectors", "update"}, true},
		{[]string{"connectors", "tools"}, true},
		{[]string{"connectors", "list"}, false},
		{[]string{"grants", "remove"}, false},
		{[]string{"grants", "add"}, false},
	} {
		cmd, _, err := root.Find(tc.path)
		if err != nil {
			t.Fatalf("%v: %v", tc.path, err)
		}
		if got := cmd.Flags().Lookup("name") != nil; got != tc.want {
			t.Errorf("%v has --name: %v, want %v", tc.path, got, tc.want)
		}
	}
}
