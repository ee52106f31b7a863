package oauthflow

import (
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// reasonChanged is the reason of a connection whose grant no longer fits
// its connector (fits).
const reasonChanged = "an admin changed the connector since it was connected, and its tokens are not for it now: connect again"

// fits reports whether grant r may serve connector c as c is now: its
// tokens were obtained under c's binding (Config.Binding) and, when c
// configures an issuer, from that issuer. A grant stored before grants
// recorded a binding fits when its resource is c's, or names it as
// protected-resource metadata may (RFC 9728 §3.3).
//
// A grant that does not fit serves no call: an admin changed the
// connector since the consent, so its tokens are for another resource,
// server, audience, client or people, and must not reach the connector as
// it is now, on any instance, even before the change's purge revokes them.
func (c *connector) fits(r *grantRecord) bool {
	switch {
	case c.cfg.Issuer != "" && r.Issuer != "" && r.Issuer != c.cfg.Issuer:
		return false
	case r.Binding != "" && c.cfg.Binding != "":
		return r.Binding == c.cfg.Binding
	}
	return r.Resource == "" || r.Resource == c.cfg.Resource || discovery.Covers(r.Resource, c.cfg.Resource)
}

// connection is r's connection as c sees it: one whose tokens serve, or
// would after a refresh, needs a consent again if its grant does not fit
// c.
func (c *connector) connection(r *grantRecord) connectors.Connection {
	conn := r.Connection
	if (conn.State == connectors.StateActive || r.retrying()) && !c.fits(r) {
		conn.State, conn.Reason = connectors.StateReauthRequired, reasonChanged
	}
	return conn
}
