package gateway

import (
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// compilePolicy compiles the grants of snap, the config's and those added
// at run time, into the policy of one generation: a grant added or removed
// is a registry change, and the generation it builds decides from its
// first request on, for new sessions and open ones alike. It returns the
// grants compiled, in the policy's order, so that a decision's 1-based
// rule index names its grant. A runtime grant that no longer compiles
// (the checks grew stricter since it was stored) is skipped and logged,
// as a runtime connector is: it grants nothing, and one bad record cannot
// stop the gateway. The config's grants were checked at provision.
func (o *Options) compilePolicy(snap *connectors.Snapshot) (*grants.Policy, []connectors.Grant, error) {
	rules := make([]grants.Rule, 0, len(snap.Grants))
	kept := make([]connectors.Grant, 0, len(snap.Grants))
	for _, gr := range snap.Grants {
		if gr.Runtime {
			if err := gr.Validate(); err != nil {
				o.Logger.Error("skipping a runtime grant", zap.String("grant", gr.ID), zap.Error(err))
				continue
			}
		}
		rules = append(rules, gr.Rule)
		kept = append(kept, gr)
	}
	p, err := grants.New(rules)
	return p, kept, err
}

// Policy returns the grants g decides by, compiled.
func (g *Gateway) Policy() *grants.Policy { return g.policy }

// Grants returns the grants g decides by, the config's first, in the
// order of its policy's rules.
func (g *Gateway) Grants() []connectors.Grant { return g.grants }

// grant returns the grant of g's policy rule at 1-based index i.
func (g *Gateway) grant(i int) (connectors.Grant, bool) {
	if i < 1 || i > len(g.grants) {
		return connectors.Grant{}, false
	}
	return g.grants[i-1], true
}
