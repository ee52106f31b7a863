package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// update runs `connectors update`. (being built)
func (c *cli) update([]string) error { return errors.New("connectors update is not built yet") }

// enable runs `connectors enable`. (being built)
func (c *cli) enable([]string) error { return errors.New("connectors enable is not built yet") }

// disable runs `connectors disable`. (being built)
func (c *cli) disable([]string) error { return errors.New("connectors disable is not built yet") }

// updateFlags defines the flags of `connectors update`. (being built)
func updateFlags(*cobra.Command) {}
