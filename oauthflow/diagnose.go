package oauthflow

import (
	"context"
	"errors"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// Step is one step of a diagnosis of the connect path.
type Step struct {
	// Name is protected_resource_metadata, authorization_server_metadata,
	// registration or authorization_url.
	Name string `json:"step"`
	// OK reports whether the step worked; a step after a failed one is
	// not run.
	OK bool `json:"ok"`
	// Detail says what the step found or what went wrong.
	Detail string `json:"detail"`
	// Fix names the connector setting that would get past a failure, if
	// one would.
	Fix string `json:"fix,omitempty"`
}

// The steps of a diagnosis, in order.
const (
	StepResourceMetadata = "protected_resource_metadata"
	StepServerMetadata   = "authorization_server_metadata"
	StepRegistration     = "registration"
	StepAuthorizationURL = "authorization_url"
	// StepClientCredentials replaces StepAuthorizationURL for a connector
	// under the client credentials grant: a token request, whose token is
	// dropped.
	StepClientCredentials = "client_credentials"
)

// Diagnose runs the connect path of connector step by step, afresh:
// discovery of the protected resource metadata (RFC 9728) and of the
// authorization server (RFC 8414 or OIDC), client registration, and the
// authorization URL. It stops at the first failure and says which setting
// would fix it. It starts no consent and records no misconfiguration;
// like a connect, it registers a client when the connector uses DCR.
func (m *Manager) Diagnose(ctx context.Context, connector string) ([]Step, error) {
	c, err := m.lookup(connector)
	if err != nil {
		return nil, err
	}
	var steps []Step
	var res *discovery.Result
	if c.cfg.Discover == nil {
		steps = append(steps,
			Step{Name: StepResourceMetadata, OK: true, Detail: "skipped: the endpoints are configured"},
			Step{Name: StepServerMetadata, OK: true, Detail: "skipped: the endpoints are configured"})
	} else {
		res, err = c.cfg.Discover(ctx, c.cfg.Resource, c.challenge.Load())
		if err == nil && res == nil {
			err = errors.New("discovery found nothing")
		}
		if s, ok := discoveryFailure(err); ok {
			return append(steps, s...), nil
		}
		prm := "resource " + res.Resource.Resource + " names " + res.Server.Issuer
		if res.Resource.Resource == "" {
			prm = "none published: served by the " + res.FoundBy + ", " + res.Server.Issuer
		}
		steps = append(steps,
			Step{Name: StepResourceMetadata, OK: true, Detail: prm},
			Step{Name: StepServerMetadata, OK: true, Detail: "issuer " + res.Server.Issuer})
	}
	as, err := c.resolve(res)
	if err != nil {
		steps[len(steps)-1] = Step{Name: StepServerMetadata, Detail: sanitize(err.Error(), maxDescription),
			Fix: "set issuer, authorization_endpoint and token_endpoint in the connector's auth oauth block"}
		return steps, nil
	}
	steps[len(steps)-1].Detail += "; " + c.dpopVerdict(as)
	cl, err := m.client(ctx, c, as)
	if err != nil {
		return append(steps, Step{Name: StepRegistration, Detail: sanitize(err.Error(), maxDescription),
			Fix: "set client_id and client_secret (a static client registered with " + as.Issuer + "), with token_auth_method if needed"}), nil
	}
	steps = append(steps, Step{Name: StepRegistration, OK: true, Detail: "client " + cl.Kind + " " + cl.ID})
	if c.clientCredentials() {
		return append(steps, m.diagnoseClientCredentials(ctx, c, as, cl)), nil
	}
	f := m.newFlow(c, as, cl, "", "", "", c.scopes(as))
	u, err := authURL(as.AuthorizationEndpoint, cl, f, "diagnose")
	if err != nil {
		return append(steps, Step{Name: StepAuthorizationURL, Detail: sanitize(err.Error(), maxDescription),
			Fix: "set authorization_endpoint"}), nil
	}
	return append(steps, Step{Name: StepAuthorizationURL, OK: true, Detail: u}), nil
}

// discoveryFailure turns a discovery error into the steps it ends, with
// the setting that would get past it.
func discoveryFailure(err error) ([]Step, bool) {
	if err == nil {
		return nil, false
	}
	detail := sanitize(err.Error(), maxDescription)
	prm := Step{Name: StepResourceMetadata, Detail: detail}
	switch {
	case errors.Is(err, discovery.ErrResourceMismatch):
		prm.Fix = "set resource to the resource the server's metadata names, if it is the same server"
		return []Step{prm}, true
	case errors.Is(err, discovery.ErrNoResourceMetadata):
		prm.Fix = "set issuer (or authorization_endpoint and token_endpoint) in the connector's auth oauth block"
		return []Step{prm}, true
	}
	ok := Step{Name: StepResourceMetadata, OK: true, Detail: "found"}
	asm := Step{Name: StepServerMetadata, Detail: detail}
	switch {
	case errors.Is(err, discovery.ErrNoPKCE):
		asm.Fix = "none: mcpgate requires PKCE S256, which the server must support"
	case errors.Is(err, discovery.ErrIssuerMismatch):
		asm.Fix = "set issuer to the issuer the server's metadata names, if it is the same server"
	default:
		asm.Fix = "set issuer, authorization_endpoint and token_endpoint in the connector's auth oauth block"
		if !errors.Is(err, discovery.ErrNoAuthorizationServer) {
			return []Step{prm}, true // unreachable or malformed: which document is unknown
		}
	}
	return []Step{ok, asm}, true
}
