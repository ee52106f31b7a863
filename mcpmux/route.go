package mcpmux

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// notGranted is the one answer for an item the caller may not use and for
// one that does not exist, so that refusals reveal nothing. Its code is
// the spec's for both: an unknown tool and a resource that does not
// exist are -32602 (Tools and Resources, "Error Handling").
func notGranted(what, name string) *reply {
	rep := failure(errorf(codeInvalidParams, "%s %q is not granted to you", what, name))
	rep.refused = refusedDenied
	return rep
}

// routeTool routes tools/call of the tool name, read from params, to
// the tool's connector, and says where it went.
func (m *Mux) routeTool(x *exchange, name string, params []byte) (*reply, toolRoute) {
	// The built-in tool is listed only to a caller who can see a
	// connector, and like every other item it is refused when not listed.
	if name == builtinName && m.offersBuiltin(x) {
		return m.callBuiltin(x), toolRoute{builtinConnector, builtinName, true}
	}
	if rep, ok := m.routeSearch(x, name, params); ok {
		return rep, toolRoute{builtinConnector, searchToolName, true}
	}
	c, it, rep := m.resolve(x, toolsKind, name)
	if rep != nil {
		// The audit names the connector the agent aimed at, even when the
		// answer must not say whether it exists.
		return rep, toolRoute{connector: m.refusedConnector(x, name), tool: name}
	}
	route := toolRoute{c.ID, it.name, true}
	if it.tool != nil && x.modern {
		// Arguments mirrored into Mcp-Param-* headers must match the body
		// (2026-07-28), so that what intermediaries route on is what runs.
		if err := mcp.ValidateParamHeadersLookup(x.lookupHeader, it.tool, params); err != nil {
			return invalid(failure(errorf(codeHeaderMismatch, "%v", err))), route
		}
	}
	if rep := m.approve(x, c, it, params); rep != nil {
		return rep, route
	}
	// What is forwarded is the tool the grant check passed: it.name, put
	// into the agent's own params, never a name read again from them.
	return m.forward(x, c, "tools/call", params, "name", it.name, name, it.tool), route
}

// getPrompt routes prompts/get to the prompt's connector.
func (m *Mux) getPrompt(x *exchange, params []byte) *reply {
	name, ok := stringMember(params, "name")
	if !ok {
		return failure(errorf(codeInvalidParams, "params.name must be a string"))
	}
	c, it, rep := m.resolve(x, promptsKind, name)
	if rep != nil {
		return rep
	}
	return m.forward(x, c, "prompts/get", params, "name", it.name, name, nil)
}

// readResource routes resources/read by the index built from the lists.
func (m *Mux) readResource(x *exchange, params []byte) *reply {
	uri, ok := stringMember(params, "uri")
	if !ok {
		return failure(errorf(codeInvalidParams, "params.uri must be a string"))
	}
	c, orig, rep := m.routeURI(x, uri)
	if rep != nil {
		return rep
	}
	return m.forward(x, c, "resources/read", params, "uri", orig, uri, nil)
}

// resolve finds the connector and item a tool or prompt name refers to,
// and checks that the caller is granted it: whoever routes by name gets the
// grant check with it.
func (m *Mux) resolve(x *exchange, kind *listKind, name string) (*connectors.Connector, *item, *reply) {
	what := "tool"
	if kind == promptsKind {
		what = "prompt"
	}
	// On a connector's own endpoint every name is that connector's; on
	// the aggregated one the prefix names it.
	id := x.scope
	if id == "" {
		var ok bool
		if id, ok = m.names.connector(name); !ok {
			return nil, nil, notGranted(what, name)
		}
	}
	c, ok := m.conns[id]
	if !ok || c.URL == nil || !x.view.Visible(id) {
		return nil, nil, notGranted(what, name)
	}
	if c.Disabled {
		return nil, nil, disabled(x, c)
	}
	cred, err := m.credentialFor(x, c)
	if err != nil {
		return nil, nil, unavailable(x, c, err)
	}
	// The name is looked up in the list this credential sees, never
	// passed on untried: an item must be listed to be called, so that
	// the connector's tool selection and pins hold for calls as for lists.
	l, err := m.list(x.ctx, x.caller, c, cred, kind)
	if err != nil {
		return nil, nil, unavailable(x, c, err)
	}
	index := l.byWire
	if x.scope != "" {
		index = l.byName
	}
	// The grant is judged on the upstream's name and the admin's
	// read/write fact, the same inputs the list filter used: what a list
	// hides, a call is refused (deny by default, both checks, always).
	i, ok := index[name]
	if !ok || !x.view.Allows(kind.kind, c.ID, l.items[i].name, l.items[i].readOnly) {
		return nil, nil, notGranted(what, name)
	}
	return c, &l.items[i], nil
}

// disabled is the refusal of a call to disabled connector c: before its
// credential is looked up, so that no token is used, and nothing is sent
// upstream. Only a caller who can see c gets it; to the others c does not
// exist. A tool call gets a tool error, which the model reads and can
// tell the user (Tools, "Error Handling"), as a consent needed does; any
// other request a JSON-RPC error, with the same words.
func disabled(x *exchange, c *connectors.Connector) *reply {
	err := connectors.DisabledError(c.ID)
	data := map[string]string{"connector": c.ID, "status": StatusDisabled}
	rep := failure(&rpcError{Code: codeInternalError, Message: err.Error(), Data: data})
	if x.method == "tools/call" {
		rep = toolError(err.Error(), data)
	}
	rep.refused = &refusal{OutcomeDisabled, err}
	return rep
}

// toolError is a tool result with isError that the gateway answers
// itself: text for the model, and structured for clients that read it.
func toolError(text string, structured any) *reply {
	t, _ := json.Marshal(text)
	s, _ := json.Marshal(structured)
	return &reply{result: json.RawMessage(`{"content":[{"type":"text","text":` + string(t) +
		`}],"structuredContent":` + string(s) + `,"isError":true}`)}
}

// disabledIn returns the disabled connector that a mcpgate://<id>/ URI
// names, if the caller can see it in this endpoint's scope.
func (m *Mux) disabledIn(x *exchange, uri string) *connectors.Connector {
	rest, ok := strings.CutPrefix(uri, uriScheme)
	if !ok {
		return nil
	}
	id, _, _ := strings.Cut(rest, "/")
	c, ok := m.conns[id]
	if !ok || !c.Disabled || !x.view.Visible(id) || (x.scope != "" && x.scope != id) {
		return nil
	}
	return c
}

// uriScope returns the connectors a resource URI or URI template may come
// from, and the URI as they know it: mcpgate://<id>/<uri> names one
// connector, which must be in the endpoint's scope; any other URI may come
// from every connector in scope.
func (m *Mux) uriScope(x *exchange, uri string) ([]*connectors.Connector, string) {
	rest, ok := strings.CutPrefix(uri, uriScheme)
	if !ok {
		return m.visible(x.view, x.scope), uri
	}
	id, inner, _ := strings.Cut(rest, "/")
	// A connector's own endpoint serves only that connector, whatever
	// the URI names.
	if x.scope != "" && x.scope != id {
		return nil, inner
	}
	return m.visible(x.view, id), inner
}

// routeURI finds the one connector that serves a resource URI: from the
// resource lists first, then from the URI templates. A URI that several
// connectors serve must be named mcpgate://<connector>/<uri>. A URI over
// maxURILen bytes is refused as invalid params, whether or not some
// connector lists it, so that the answer reveals nothing and template
// matching stays bounded.
func (m *Mux) routeURI(x *exchange, uri string) (*connectors.Connector, string, *reply) {
	if len(uri) > maxURILen {
		return nil, "", invalid(failure(errorf(codeInvalidParams, "%v", errURITooLong)))
	}
	conns, orig := m.uriScope(x, uri)
	if c := m.disabledIn(x, uri); c != nil {
		return nil, "", disabled(x, c)
	}
	matches, listed, _ := m.matching(x, conns, resourcesKind, orig, false)
	if len(matches) == 0 {
		// A URI a connector lists is judged by the resource grants alone:
		// a granted template must not open an ungranted resource.
		var err error
		matches, _, err = m.matching(x, unlisted(conns, listed), templatesKind, orig, true)
		if errors.Is(err, errMatchBudget) {
			return nil, "", invalid(failure(errorf(codeInvalidParams, "%v", err)))
		}
		if err != nil {
			return nil, "", failure(errorf(codeInternalError, "resources/read stopped: %v", err))
		}
	}
	// Two connectors serving one URI are never guessed between: a read
	// routed to the wrong one would hand its content to the agent under
	// the other's name.
	switch len(matches) {
	case 0:
		return nil, "", notGranted("resource", uri)
	case 1:
		return matches[0], orig, nil
	}
	return nil, "", failure(errorf(codeInvalidParams,
		"resource %q is ambiguous: more than one connector offers it; read it as %s<connector>/%s, as resources/list shows", uri, uriScheme, uri))
}

// matching returns the connectors with a granted item of kind named uri,
// or, with expand, a granted URI template that uri is an expansion of; and
// the set of every connector that has such an item, granted or not. It
// fails only when matching templates outlasts the request's context.
func (m *Mux) matching(x *exchange, conns []*connectors.Connector, kind *listKind, uri string, expand bool) ([]*connectors.Connector, map[string]bool, error) {
	var out []*connectors.Connector
	found := map[string]bool{}
	lists := m.gather(x, conns, kind)
	// One matcher for every connector, so that its step budget bounds
	// the whole read, not each connector's templates on their own.
	tm := &templateMatcher{ctx: x.ctx}
	for i, c := range conns {
		if lists[i] == nil {
			continue
		}
		names, err := candidates(tm, lists[i], uri, expand)
		if err != nil {
			return nil, nil, err
		}
		for _, name := range names {
			found[c.ID] = true
			if granted(x.view, kind, c.ID, name, uri, expand) {
				out = append(out, c)
				break
			}
		}
	}
	return out, found, nil
}

// granted reports whether the view allows the item name of kind, or with
// expand, reading uri through the template name: then uri, which is what
// the upstream resolves, must pass the traversal guard as well, or a
// template grant over "file:///data/{name}" would read "file:///data/..".
func granted(v *grants.View, kind *listKind, connector, name, uri string, expand bool) bool {
	if expand {
		return v.AllowsExpansion(connector, name, uri)
	}
	return v.Allows(kind.kind, connector, name, false)
}

// candidates returns the names in l that uri matches: the one item of that
// name, found by index, or the templates it expands, matched by tm.
func candidates(tm *templateMatcher, l *list, uri string, expand bool) ([]string, error) {
	if !expand {
		if _, ok := l.byName[uri]; ok {
			return []string{uri}, nil
		}
		return nil, nil
	}
	var out []string
	for _, it := range l.items {
		ok, err := tm.match(it.name, uri)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, it.name)
		}
	}
	return out, nil
}

// unlisted returns the connectors not in listed.
func unlisted(conns []*connectors.Connector, listed map[string]bool) []*connectors.Connector {
	var out []*connectors.Connector
	for _, c := range conns {
		if !listed[c.ID] {
			out = append(out, c)
		}
	}
	return out
}

// complete routes completion/complete by its reference: a prompt by name,
// or a resource template by its URI template.
func (m *Mux) complete(x *exchange, params []byte) *reply {
	ref := member(params, "ref")
	typ, _ := stringMember(ref, "type")
	var c *connectors.Connector
	var key, orig, agent string
	switch typ {
	case "ref/prompt":
		key = "name"
		agent, _ = stringMember(ref, key)
		pc, it, rep := m.resolve(x, promptsKind, agent)
		if rep != nil {
			return rep
		}
		c, orig = pc, it.name
	case "ref/resource":
		key = "uri"
		agent, _ = stringMember(ref, key)
		tc, inner, rep := m.routeTemplate(x, agent)
		if rep != nil {
			return rep
		}
		c, orig = tc, inner
	default:
		return failure(errorf(codeInvalidParams, `params.ref.type must be "ref/prompt" or "ref/resource"`))
	}
	cred, err := m.credentialFor(x, c)
	if err != nil {
		return unavailable(x, c, err)
	}
	// The gateway offers completions whatever its upstreams do, so it
	// answers for one that does not rather than forward what it would
	// refuse with less clarity.
	if _, st, err := m.do(x.ctx, x.caller, c, &cred, eraAny, nil); err != nil {
		return unavailable(x, c, err)
	} else if member(st.caps, "completions") == nil {
		return failure(errorf(codeMethodNotFound, "connector %s does not offer completion", c.ID))
	}
	if orig != agent {
		next, err := setMember(ref, key, quote(orig))
		if err != nil {
			return failure(errorf(codeInvalidParams, "params.ref: %v", err))
		}
		params, _ = setMember(params, "ref", next)
	}
	return m.forward(x, c, "completion/complete", params, "", "", "", nil)
}

// routeTemplate finds the connector of a resource template by its exact
// URI template.
func (m *Mux) routeTemplate(x *exchange, uri string) (*connectors.Connector, string, *reply) {
	conns, orig := m.uriScope(x, uri)
	matches, _, _ := m.matching(x, conns, templatesKind, orig, false)
	if len(matches) != 1 {
		return nil, "", notGranted("resource template", uri)
	}
	return matches[0], orig, nil
}

// forward sends a routed request upstream, first renaming the member key
// from the agent's name to the upstream's when they differ. tool is the
// called tool's definition when the upstream wants its arguments mirrored
// into headers.
func (m *Mux) forward(x *exchange, c *connectors.Connector, method string, params []byte, key, upstreamName, agentName string, tool *mcp.Tool) *reply {
	if upstreamName != agentName {
		next, err := setMember(params, key, quote(upstreamName))
		if err != nil {
			return invalid(failure(errorf(codeInvalidParams, "params: %v", err)))
		}
		params = next
	}
	if m.annotate != nil {
		m.annotate(x.r, c.ID, upstreamName)
	}
	cred, err := m.credentialFor(x, c)
	if err != nil {
		return unavailable(x, c, err)
	}
	if m.used != nil {
		m.used(c.ID, x.caller.ID)
	}
	rep, _, err := m.do(x.ctx, x.caller, c, &cred, x.era(), &rpc{method: method, params: params, name: upstreamName, sink: x.notifySink(), tool: tool, ask: x.asker(), caller: x.caller.ID, agent: x.sessionMeta()})
	if err != nil {
		// An agent that went away says nothing of the upstream; only a
		// failure the upstream caused makes its lists stale.
		if x.ctx.Err() == nil {
			m.lost(c.ID)
		}
		return unavailable(x, c, err)
	}
	return rep
}

// unavailable reports a connector the caller may see but cannot reach, or
// may reach only after consenting. err has been through unreachable and
// redaction, so it holds no URL and no credential.
func unavailable(x *exchange, c *connectors.Connector, err error) *reply {
	if cr, ok := asConsent(err); ok {
		return consentReply(x, cr)
	}
	rep := failure(errorf(codeInternalError, "connector %s is unavailable: %v", c.ID, err))
	rep.refused = &refusal{OutcomeUpstreamError, err}
	return rep
}
