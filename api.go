package mcpgate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/httpapi"
	"github.com/mcpgate/caddy-mcpgate/internal/inert"
	"github.com/mcpgate/caddy-mcpgate/internal/redact"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// apiDialTimeout bounds connecting to an API. The connector's timeout
// bounds the wait for the response headers that follow.
const apiDialTimeout = 10 * time.Second

// apiProxies serves the connectors' HTTP APIs through Caddy's reverse
// proxy: one handler per API origin and timeout, shared by the connectors
// that have them, provisioned with the app's context and cleaned up with
// the app.
type apiProxies struct {
	ctx    caddy.Context
	logger *zap.Logger

	mu      sync.Mutex
	proxies map[string]*apiProxy // by apiProxyKey; nil once cleaned up
}

// apiProxy is one reverse proxy and the transport it owns.
type apiProxy struct {
	handler   *reverseproxy.Handler
	transport *reverseproxy.HTTPTransport
}

// apiCall is what the transport of an API proxy needs to know of one
// request, which it finds in the request's context: the credential to put
// in, the paths that map the API's Location back onto the gateway, and
// whom to tell when the API refuses the credential.
type apiCall struct {
	credential http.Header
	paths      inert.Paths
	refused    func(challenge string) // nil unless the credential is an OAuth token
	// send is the credential's RoundTrip (a DPoP proof per request), or nil.
	send func(rt http.RoundTripper, req *http.Request) (*http.Response, error)
}

// roundTrip sends out through rt, by the credential's RoundTrip when it
// has one.
func (c *apiCall) roundTrip(rt http.RoundTripper, out *http.Request) (*http.Response, error) {
	if c.send != nil {
		return c.send(rt, out)
	}
	return rt.RoundTrip(out)
}

// apiCallKey is the context key of a request's *apiCall.
type apiCallKey struct{}

// apiTransport is the round tripper of the API proxies: Caddy's, with the
// connector's credential put into the request only here, after the proxy
// has made the copy of the request that it logs. At debug level the proxy
// logs every request header, redacting only Authorization, Cookie and
// their kin, and not even those under log_credentials; an X-Api-Key would
// be written out as it is. Here no logger sees it.
type apiTransport struct {
	*reverseproxy.HTTPTransport
}

// RoundTrip sends req with its call's credential, and makes the response
// fit to reach the agent (inert.Response).
func (t apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	call, ok := req.Context().Value(apiCallKey{}).(*apiCall)
	if !ok {
		return nil, errors.New("an API request came without its call")
	}
	// An API that echoes the credential back must not hand it to the
	// agent, which never holds one: what comes back is searched for it.
	hide := redact.FromHeader(call.credential)
	// The proxy relays a 1xx response's header from its own trace, which
	// runs after this one on the same header: filtered first, a 103 Early
	// Hints preloads nothing on the gateway's origin.
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
			inert.Filter(http.Header(h))
			hide.Header(http.Header(h))
			return nil
		},
	})
	out := req.Clone(ctx)
	maps.Copy(out.Header, call.credential)
	hide.Request(out.Header)
	res, err := call.roundTrip(t.HTTPTransport, out)
	if err != nil {
		return nil, err
	}
	// Before the challenge is filtered out, and before the 401 goes on,
	// so that the caller's retry finds a refreshed token.
	if res.StatusCode == http.StatusUnauthorized && call.refused != nil {
		call.refused(res.Header.Get("WWW-Authenticate"))
	}
	inert.Response(res, &call.paths)
	if err := hide.Response(res); err != nil {
		_ = res.Body.Close()
		return nil, err
	}
	return res, nil
}

// provisionAPIs sets up the HTTP API side of the gateway, with a reverse
// proxy for each API of the config's connectors. A runtime connector's API
// gets its proxy on first use.
func (a *App) provisionAPIs(ctx caddy.Context, conns []*connectors.Connector) error {
	// The proxies need the events app; load it now, while the config is
	// provisioned, rather than under a request.
	if _, err := ctx.App("events"); err != nil {
		return err
	}
	a.apis = &apiProxies{ctx: ctx, logger: a.logger.Named("api"), proxies: map[string]*apiProxy{}}
	for _, c := range conns {
		if c.API == nil {
			continue
		}
		if _, err := a.apis.proxy(c); err != nil {
			return fmt.Errorf("connector %s: api: %v", c.ID, err)
		}
	}
	return nil
}

// cleanup releases every proxy: their upgraded connections, their hosts in
// Caddy's upstream pool and their idle connections.
func (p *apiProxies) cleanup() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, proxy := range p.proxies {
		_ = proxy.handler.Cleanup()
		_ = proxy.transport.Cleanup()
	}
	p.proxies = nil
}

// apiProxyKey names the proxy that can serve an API: the path is the
// request's, and the credential is injected per request, so connectors
// whose APIs share an origin and a timeout share a proxy. A runtime
// connector that goes leaves its proxy until the config does.
func apiProxyKey(c *connectors.Connector) string {
	return c.API.Scheme + "://" + c.API.Host + " " + c.RequestTimeout().String()
}

// proxy returns the reverse proxy for connector c's API, provisioning it
// on first use.
func (p *apiProxies) proxy(c *connectors.Connector) (*reverseproxy.Handler, error) {
	key := apiProxyKey(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	if proxy, ok := p.proxies[key]; ok {
		return proxy.handler, nil
	}
	// A request still running on a retired generation may get here after
	// cleanup: a proxy made now would be cleaned up by no one.
	if p.proxies == nil {
		return nil, errors.New("the config is unloading")
	}
	proxy, err := newAPIProxy(p.ctx, c)
	if err != nil {
		return nil, err
	}
	p.proxies[key] = proxy
	return proxy.handler, nil
}

// newAPIProxy provisions a reverse proxy to the origin of c's API. It
// flushes every write at once, so that a streamed response reaches the
// agent as it comes and a large one is never held whole; it buffers no
// request body either. The Host header is the API's, as its virtual
// hosting expects, not the gateway's.
func newAPIProxy(ctx caddy.Context, c *connectors.Connector) (*apiProxy, error) {
	t := &reverseproxy.HTTPTransport{
		DialTimeout:           caddy.Duration(apiDialTimeout),
		ResponseHeaderTimeout: caddy.Duration(c.RequestTimeout()),
	}
	if c.API.Scheme == "https" {
		t.TLS = &reverseproxy.TLSConfig{ServerName: c.API.Hostname()}
	}
	// Provisioned here rather than loaded as a module, so that a proxy
	// made under a request registers nothing in the shared context.
	if err := t.Provision(ctx); err != nil {
		return nil, err
	}
	h := &reverseproxy.Handler{
		Transport:     apiTransport{t},
		Upstreams:     reverseproxy.UpstreamPool{{Dial: inert.HostPort(c.API)}},
		FlushInterval: -1,
		Headers: &headers.Handler{
			Request: &headers.HeaderOps{Set: http.Header{"Host": {c.API.Host}}},
		},
	}
	if err := h.Provision(ctx); err != nil {
		_ = t.Cleanup()
		return nil, err
	}
	return &apiProxy{handler: h, transport: t}, nil
}

// noNext is the next handler of the API proxies, which never call it: they
// have no handle_response routes, and they answer every request.
var noNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// serveAPI answers ANY /connectors/{id}/api/{path}: it proxies the request
// to the connector's API base joined with {path}, with the query string,
// the caller's credentials replaced by the connector's. ServeHTTP has
// marked the response inert (inert.Mark) before any of it is written.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, g *gateway.Gateway, caller grants.Caller, id string) error {
	c, err := h.apiAccess(r, g, caller, id)
	if err != nil {
		return err
	}
	target, err := httpapi.Target(c.API, id, r.URL)
	if err != nil {
		return &web.Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	annotate(r, id, "")
	cred, err := g.Mux().Credential(r.Context(), mcpmux.CredentialRequest{Caller: caller, Connector: c})
	if err != nil {
		return h.apiCredentialError(id, caller, err)
	}
	proxy, err := h.app.apis.proxy(c)
	if err != nil {
		return caddyhttp.Error(http.StatusBadGateway, fmt.Errorf("connector %s: api: %v", id, err))
	}
	call := &apiCall{
		credential: cred.Header,
		send:       cred.RoundTrip,
		paths:      inert.Paths{Base: c.API, API: target, Prefix: "/connectors/" + id + "/api", Gateway: r.URL.EscapedPath()},
	}
	// Only an OAuth token can be refreshed; a refused static credential
	// goes back to the agent as the API's 401.
	if c.Auth.Type == connectors.AuthOAuth {
		call.refused = func(challenge string) { h.app.apis.refused(r, g.Mux(), caller, c, cred, challenge) }
	}
	out := httpapi.Outbound(context.WithValue(r.Context(), apiCallKey{}, call), r, target, cred.Header)
	return proxy.ServeHTTP(w, out, noNext)
}

// apiAccess returns connector id if the caller may send r to its API. A
// caller with no grant of the whole connector learns nothing, not even
// that it exists.
func (h *Handler) apiAccess(r *http.Request, g *gateway.Gateway, caller grants.Caller, id string) (*connectors.Connector, error) {
	c, _ := g.Mux().Connector(id)
	whole, writable := g.Policy().For(caller).Whole(id)
	access := httpapi.Decide(c, whole, writable, r.Method)
	if access == httpapi.Hidden {
		return nil, &web.Error{Status: http.StatusNotFound, Message: mcpmux.NoSuchConnector}
	}
	// A browser on another site may not make the caller write through the
	// connector's credential (cross-site request forgery); clients that are
	// not browsers send neither Sec-Fetch-Site nor Origin and pass.
	if h.app.gw.CSRF.Check(r) != nil {
		return nil, &web.Error{Status: http.StatusForbidden, Message: "cross-site request refused: a browser may call an API only from the gateway's own origin"}
	}
	if access == httpapi.ReadOnly {
		return nil, &web.Error{Status: http.StatusForbidden, Message: "your grant of connector " + id + " is read-only: its API takes only GET, HEAD and OPTIONS"}
	}
	if access == httpapi.Disabled {
		return nil, &web.Error{Status: http.StatusForbidden, Message: connectors.DisabledError(id).Error()}
	}
	return c, nil
}

// refused tells the credential source that the API refused an OAuth
// token, so that it refreshes it, or marks the connection as needing
// consent again. Unlike the MCP side, the gateway does not retry the
// refused request with a new token: its body has streamed to the API and
// cannot be sent again.
func (p *apiProxies) refused(r *http.Request, mux *mcpmux.Mux, caller grants.Caller, c *connectors.Connector, cred mcpmux.Credential, challenge string) {
	_, err := mux.Credential(r.Context(), mcpmux.CredentialRequest{Caller: caller, Connector: c, Refused: &cred, Challenge: challenge})
	if err != nil {
		if _, consent := errors.AsType[*mcpmux.ConsentRequired](err); !consent {
			p.logger.Warn("refreshing a token the API refused", zap.String("connector", c.ID), zap.String("user", caller.ID), zap.Error(err))
		}
	}
}

// apiCredentialError is the answer to a request whose credential is not
// available: where to consent when that is what is missing, as the MCP
// side says it, else 502.
func (h *Handler) apiCredentialError(id string, caller grants.Caller, err error) error {
	cr, ok := errors.AsType[*mcpmux.ConsentRequired](err)
	if !ok {
		h.app.apis.logger.Error("getting the credential of an API", zap.String("connector", id), zap.String("user", caller.ID), zap.Error(err))
		return &web.Error{Status: http.StatusBadGateway, Message: "connector " + id + ": its credential is not available"}
	}
	// 403, not 401: the caller is known to the gateway; it is the
	// connector that lacks consent, which no credential of the caller's
	// can give.
	e := &web.Error{Status: http.StatusForbidden, Message: cr.Message, Header: http.Header{},
		Fields: map[string]string{"connector": id, "status": cr.Status, "connect_url": cr.URL}}
	if cr.URL != "" {
		e.Message += " Open " + cr.URL + " to connect, then try again."
	}
	// Misconfigured is the gateway's own fault, which no consent fixes
	// until an admin does: a server error, not a refusal.
	if cr.Status == mcpmux.StatusMisconfigured {
		e.Status = http.StatusServiceUnavailable
	}
	// The connect URL is bound to this caller (its for= tag): no shared
	// cache may keep it for another.
	web.NoStore(e.Header)
	return e
}
