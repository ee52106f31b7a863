package admin

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// updatedConnector answers PATCH /mcpgate/connectors/{id}: the connector
// as it is now, and what became of its users' tokens.
type updatedConnector struct {
	gateway.ConnectorView
	// Tokens says whether the tokens were kept or revoked, and why.
	Tokens string `json:"tokens"`
	// Revoked is the revocation of each connection's tokens at the
	// provider (RFC 7009), when the change made them useless; [] when
	// they were kept.
	Revoked []oauthflow.Revocation `json:"revoked"`
}

// tokenFate is what an update did to a connector's tokens: in a
// sentence for the answer, and in a few words for the audit log.
type tokenFate struct {
	revoked         []oauthflow.Revocation
	sentence, short string
}

// updateConnector answers PATCH /mcpgate/connectors/{id}: the body is a
// JSON merge patch (RFC 7396) of the connector as POST takes it, plus
// "enabled". A change that keeps the issuer, the resource, the consent
// mode and the client keeps every user's tokens; any other revokes them
// at the provider and deletes them first, since tokens issued for another
// resource, by another server, to another client or to other people must
// not serve the new connector. A config connector may only be enabled or
// disabled here (409 otherwise).
func (api *API) updateConnector(w http.ResponseWriter, r *http.Request) error {
	patch, err := readBody(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	var fate tokenFate
	var what string
	_, err = api.Registry.Update(r.Context(), id, patch, func(old, next connectors.Entry) (err error) {
		what = changeOf(old, next)
		fate, err = api.settleTokens(r.Context(), old, next)
		return err
	})
	if err != nil {
		return fromRegistry(err)
	}
	if what == "" {
		what, fate = "changed nothing", tokenFate{sentence: "kept: the patch changes nothing", short: "tokens kept"}
	}
	api.Audit.AdminChange("", id, adminDetail(r, what+"; "+fate.short))
	return write(w, http.StatusOK, api.updated(r.Context(), id, fate))
}

// updated shows connector id as the gateway serves it after an update.
func (api *API) updated(ctx context.Context, id string, fate tokenFate) updatedConnector {
	out := updatedConnector{ConnectorView: gateway.ConnectorView{ID: id}, Tokens: fate.sentence, Revoked: fate.revoked}
	if out.Revoked == nil {
		out.Revoked = []oauthflow.Revocation{} // [] rather than null: there were none
	}
	g := api.Live.Current()
	if c, ok := g.Connector(id); ok {
		out.ConnectorView = g.View(ctx, api.Registry.Snapshot(), c)
	}
	return out
}

// changeOf says in a few words what an update does, for the audit log.
func changeOf(old, next connectors.Entry) string {
	switched := old.Config.Disabled != next.Config.Disabled
	old.Config.Disabled, old.Updated = next.Config.Disabled, next.Updated
	var did []string
	if !reflect.DeepEqual(old, next) {
		did = append(did, "updated")
	}
	switch {
	case switched && next.Config.Disabled:
		did = append(did, "disabled")
	case switched:
		did = append(did, "enabled")
	case did == nil:
		return "changed nothing in the connector"
	}
	return joinWords(did) + " the connector"
}

// settleTokens revokes and deletes the tokens of connector old if the
// update to next makes them useless (connectors.TokenChanges), through
// the OAuth manager that holds them now, which knows the client they
// were issued to. A configured issuer that every grant already came
// from changes nothing.
func (api *API) settleTokens(ctx context.Context, old, next connectors.Entry) (tokenFate, error) {
	id := old.Config.ID
	m, _, ok := api.Live.Current().OAuthFor(id)
	if !ok {
		return tokenFate{sentence: "kept: the connector holds no OAuth tokens", short: "no OAuth tokens"}, nil
	}
	changes := connectors.TokenChanges(old.Config, next.Config)
	if slices.Contains(changes, connectors.IssuerChange) {
		issuers, err := m.Issuers(ctx, id)
		if err != nil {
			return tokenFate{}, errorf(http.StatusInternalServerError, "reading the issuers of %s: %v", id, err)
		}
		if issuer := next.Config.OAuth().Issuer; !slices.ContainsFunc(issuers, func(s string) bool { return s != issuer }) {
			changes = slices.DeleteFunc(changes, func(c string) bool { return c == connectors.IssuerChange })
		}
	}
	if len(changes) == 0 {
		return tokenFate{sentence: "kept: the issuer, the resource, the consent mode and the client did not change", short: "tokens kept"}, nil
	}
	why := joinWords(changes) + " changed"
	revs, err := m.Remove(ctx, id, "an admin changed the connector: "+why+"; connect again")
	if err != nil {
		return tokenFate{}, errorf(http.StatusInternalServerError, "revoking the tokens of %s: %v", id, err)
	}
	return tokenFate{revoked: revs, short: "tokens revoked: " + why,
		sentence: "revoked: " + why + "; every connection's tokens were revoked at the provider and deleted, with a registered client: connect again"}, nil
}

// joinWords joins phrases as people list them: "a, b and c".
func joinWords(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
