package admin

import (
	"net/http"
	"time"

	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// shownConnector answers GET /mcpgate/connectors/{id}: the connector as
// the list shows it, with its details.
type shownConnector struct {
	gateway.ConnectorView
	Details connectorDetails `json:"details"`
}

// connectorDetails is what the list leaves out: times, and the OAuth
// client and connection, without a secret.
type connectorDetails struct {
	// Created and Updated are the registry entry's: when a runtime
	// connector was added, and last changed by an admin.
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	// LastUsed is when the connector was last used: by User if given,
	// else by anyone.
	LastUsed time.Time `json:"last_used,omitzero"`
	// User is the ?user= asked for: whose connection of a per-user
	// connector Connection and OAuth show.
	User string `json:"user,omitempty"`
	// OAuth is the connector's OAuth client and connection.
	OAuth *oauthflow.Details `json:"oauth,omitempty"`
}

// showConnector answers GET /mcpgate/connectors/{id}[?user=…]. Under
// per-user consent ?user= picks whose connection to show; an unknown
// user has the zero connection, not an error, as the Connectors page
// shows a user who never connected. Nothing here asks the authorization
// server: the details come from memory and the store.
func (api *API) showConnector(w http.ResponseWriter, r *http.Request) error {
	g, c, err := api.lookup(r)
	if err != nil {
		return err
	}
	snap, user := api.Registry.Snapshot(), r.URL.Query().Get("user")
	out := shownConnector{ConnectorView: g.View(r.Context(), snap, c), Details: connectorDetails{User: user}}
	if e, ok := snap.Entry(c.ID); ok {
		out.Details.Created, out.Details.Updated = e.Created, e.Updated
	}
	if out.Details.LastUsed, err = g.LastUsed(r.Context(), c.ID, user); err != nil {
		return errorf(http.StatusInternalServerError, "reading when %s was last used: %v", c.ID, err)
	}
	if m, consent, ok := g.OAuthFor(c.ID); ok {
		d, err := m.Details(r.Context(), c.ID, user)
		if err != nil {
			return errorf(http.StatusInternalServerError, "reading the OAuth details of %s: %v", c.ID, err)
		}
		out.Details.OAuth = &d
		if consent == oauthflow.PerUser && user != "" {
			out.Connection = &d.Connection // the list shows no per-user connection
		}
	}
	return write(w, http.StatusOK, out)
}
