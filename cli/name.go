package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Every command that names a connector takes its id as the argument or
// as --name, as AGP's CLI does, so that scripts written for either work.

// takesID reports whether cc names a connector by its id. Only the
// connectors group does: a grant's id is no connector's, and --name on
// `grants remove` would name a connector that the command never reads.
func (cc cliCommand) takesID() bool {
	return cc.parent == "connectors" && strings.Contains(cc.use, " <id>")
}

// moreArgs reports whether cc takes arguments after the id, as tools
// does tool names.
func (cc cliCommand) moreArgs() bool { return strings.Contains(cc.use, "...]") }

// nameFlag gives cmd --name, and checks its arguments with the id that
// --name gives in place.
func nameFlag(cmd *cobra.Command, cc cliCommand) {
	cmd.Flags().String("name", "", "The connector's id (or give it as the argument)")
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		args, err := withName(cmd, args, cc.moreArgs())
		if err != nil || cc.args == nil {
			return err
		}
		return cc.args(cmd, args)
	}
}

// withName returns args with the id first: the argument, or --name. Both
// may be given only if they are equal; with neither, it says how to name
// the connector. Under a command that takes more arguments, an argument
// that is not the --name id is one of those.
func withName(cmd *cobra.Command, args []string, more bool) ([]string, error) {
	name, _ := cmd.Flags().GetString("name")
	switch {
	case name == "" && len(args) == 0:
		return nil, errors.New("say which connector: give its id as the argument or with --name")
	case name == "" || (len(args) > 0 && args[0] == name):
		return args, nil
	case len(args) == 0 || more:
		return append([]string{name}, args...), nil
	}
	return nil, fmt.Errorf("the id is %q or %q? give it once", args[0], name)
}
