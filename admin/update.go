package admin

import (
	"context"
	"fmt"
	"net/http"
	"reflect"

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
// "enabled". A change that keeps what the tokens are bound to and the
// issuer keeps every user's tokens; any other makes them useless (tokens
// issued for another resource, audience or server, to another client or
// to other people must not serve the new connector). A config connector
// may only be enabled or disabled here (409 otherwise).
//
// The change commits first; the old tokens are then disconnected and
// revoked (settleTokens), outside the registry's lock, so that a change
// that fails to be stored leaves them untouched, and no other change
// waits for the providers. From the commit on, no instance uses them:
// the OAuth manager refuses a grant bound to other settings than the
// connector's (connectors.TokenBinding).
func (api *API) updateConnector(w http.ResponseWriter, r *http.Request) error {
	patch, err := readBody(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	// The generation serving before the change holds the OAuth client that
	// the tokens were issued to, and revokes them; in use until then, so
	// that the change does not close it under the revocation.
	before := api.Live.Acquire()
	defer before.Leave()
	var old, next connectors.Entry
	changed := false
	_, err = api.Registry.Update(r.Context(), id, patch, func(o, n connectors.Entry) error {
		old, next, changed = o, n, true
		return nil
	})
	if err != nil {
		return fromRegistry(err)
	}
	what, fate := "changed nothing", tokenFate{sentence: "kept: the patch changes nothing", short: "tokens kept"}
	if changed {
		what, fate = changeOf(old, next), api.settleTokens(r.Context(), before, old, next)
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
	return gateway.JoinWords(did) + " the connector"
}

// settleTokens disconnects and revokes the tokens of connector old, now
// next, if the change made them useless (gateway.TokenChanges), through the OAuth
// manager of before, the generation that served old, which knows the
// client they were issued to. The records stay, disconnected with the
// reason for users to read, and a revocation that fails for a while is
// retried (oauthflow's RetryRevocations). A connector that no longer uses
// OAuth has its records purged; one whose client changed, its registered
// clients forgotten. The change is in force by now: a failure here is
// told, not returned.
func (api *API) settleTokens(ctx context.Context, before *gateway.Gateway, old, next connectors.Entry) tokenFate {
	id := old.Config.ID
	m, _, ok := before.OAuthFor(id)
	if !ok {
		return tokenFate{sentence: "kept: the connector held no OAuth tokens", short: "no OAuth tokens"}
	}
	changes := gateway.TokenChanges(ctx, m, old.Config, next.Config)
	if len(changes) == 0 {
		return tokenFate{sentence: "kept: what the tokens are bound to and the issuer did not change", short: "tokens kept"}
	}
	why, revs, err := gateway.SettleTokens(ctx, m, id, changes, next.Config.OAuth() != nil)
	return revokedFate(why, revs, err)
}

// revokedFate says what became of the tokens that a change made useless:
// revoked (or left to retry), or, when the purge failed, refused by the
// connector from now on and still to be purged.
func revokedFate(why string, revs []oauthflow.Revocation, err error) tokenFate {
	if err != nil {
		return tokenFate{revoked: revs, short: "tokens refused, their purge failed: " + why + ": " + err.Error(),
			sentence: "refused: " + why + ", so the connector uses none of the old tokens, but disconnecting them failed (" + err.Error() +
				"): disconnect each connection (connectors disconnect) to revoke them"}
	}
	return tokenFate{revoked: revs, short: "tokens revoked: " + why,
		sentence: "revoked: " + why + "; " + revocationSummary(revs) + ": connect again"}
}

// revocationSummary counts what became of each connection's tokens.
func revocationSummary(revs []oauthflow.Revocation) string {
	if len(revs) == 0 {
		return "no connection held tokens"
	}
	var revoked, retrying int
	for _, r := range revs {
		switch {
		case r.Revoked:
			revoked++
		case r.Retrying:
			retrying++
		}
	}
	s := fmt.Sprintf("%d of %d connections' tokens were revoked at the provider", revoked, len(revs))
	if retrying > 0 {
		s += fmt.Sprintf(", %d will be retried", retrying)
	}
	return s + ", and every connection is disconnected"
}
