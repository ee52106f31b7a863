package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The commands: each reads its flags, makes one admin API call and hands
// the answer to its printer in format.go.

// userQuery is ?user= from --user, if given.
func (c *cli) userQuery() url.Values {
	q := url.Values{}
	if user := c.str("user"); user != "" {
		q.Set("user", user)
	}
	return q
}

// who is whoever opens a consent's authorization URL: --user, or an
// admin.
func (c *cli) who() string {
	if user := c.str("user"); user != "" {
		return user
	}
	return "an admin"
}

// secret returns a secret flag's value, read from standard input when
// it is "-" so that it stays out of the shell history and process list.
func (c *cli) secret(v string) (string, error) {
	if v != "-" {
		return v, nil
	}
	line, err := bufio.NewReader(c.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading a secret from standard input: %v", err)
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", errors.New("standard input held no secret")
	}
	return line, nil
}

// add runs `connectors add`.
func (c *cli) add(args []string) error {
	req, err := c.addRequest(args)
	if err != nil {
		return err
	}
	return call(c, http.MethodPost, "/mcpgate/connectors", req, printAdded)
}

// addRequest builds the body of `connectors add` from its flags.
func (c *cli) addRequest(args []string) (addConnectorRequest, error) {
	id := c.str("name")
	if len(args) == 1 {
		if id != "" && id != args[0] {
			return addConnectorRequest{}, fmt.Errorf("the id is %q or %q? give it once", args[0], id)
		}
		id = args[0]
	}
	req := addConnectorRequest{
		ID: id, URL: c.str("mcp-server-url"), API: c.str("api"),
		Title:       c.str("title"),
		Description: c.str("description"),
	}
	if id == "" || (req.URL == "" && req.API == "") {
		return req, errors.New("say the connector's id with --name, and its MCP endpoint with --mcp-server-url or its HTTP API with --api")
	}
	auth, err := c.auth()
	if err != nil {
		return req, err
	}
	req.Auth = auth
	if c.boolean("no-match-preset") {
		req.MatchPreset = new(false)
	}
	return req, nil
}

// auth builds the connector's credential from the flags: a bearer token,
// a header, OAuth, or none.
func (c *cli) auth() (*authConfig, error) {
	bearer, header := c.str("bearer"), c.str("header")
	oauth := slices.ContainsFunc(oauthFlags, c.flags.Changed)
	kinds := 0
	for _, set := range []bool{bearer != "", header != "", oauth} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, errors.New("choose one kind of credential: --bearer, --header, or the OAuth flags")
	}
	switch {
	case bearer != "":
		token, err := c.secret(bearer)
		return &authConfig{Type: authBearer, Token: token}, err
	case header != "":
		name, value, ok := strings.Cut(header, "=")
		if !ok || name == "" {
			return nil, errors.New("--header: say <name>=<value>") // the flag may hold the secret
		}
		value, err := c.secret(value)
		return &authConfig{Type: authHeader, Header: name, Value: value}, err
	case oauth:
		o, err := c.oauthConfig()
		return &authConfig{Type: authOAuth, OAuth: o}, err
	}
	return nil, nil
}

// oauthConfig builds the connector's OAuth client from the flags.
func (c *cli) oauthConfig() (*oauthConfig, error) {
	o := &oauthConfig{
		ClientID:              c.str("client-id"),
		ClientKeyID:           c.str("client-key-id"),
		TokenAuthMethod:       c.str("token-auth-method"),
		Audience:              c.str("audience"),
		Resource:              c.str("resource"),
		Consent:               c.str("consent"),
		Scopes:                c.scopes(),
		Issuer:                c.str("issuer"),
		AuthorizationEndpoint: c.str("authorization-endpoint"),
		TokenEndpoint:         c.str("token-endpoint"),
		RegistrationEndpoint:  c.str("registration-endpoint"),
		RevocationEndpoint:    c.str("revocation-endpoint"),
		ClientName:            c.str("client-name"),
		DPoP:                  c.str("dpop"),
		InsecureLoopback:      c.boolean("insecure-loopback"),
	}
	if c.boolean("dcr") {
		o.Registration = "dcr"
	}
	if o.Grant = c.grant(); o.Grant == grantClientCredentials && o.Consent == "" {
		o.Consent = "shared" // one token, the client's, serves every granted user
	}
	var err error
	if o.ClientKey, err = c.clientKey(c.str("client-key")); err != nil {
		return nil, err
	}
	o.ClientSecret, err = c.secret(c.str("client-secret"))
	return o, err
}

// show runs `connectors show`.
func (c *cli) show(args []string) error {
	return call(c, http.MethodGet, connectorURI(args[0], "", c.userQuery()), nil, printShow)
}

// connect runs `connectors connect`.
func (c *cli) connect(args []string) error {
	return call(c, http.MethodPost, connectorURI(args[0], "/connect", c.userQuery()), nil, printConnect(args[0], c.who()))
}

// disconnect runs `connectors disconnect`.
func (c *cli) disconnect(args []string) error {
	return call(c, http.MethodPost, connectorURI(args[0], "/disconnect", c.userQuery()), nil, printDisconnect(args[0]))
}

// reconnect runs `connectors reconnect`.
func (c *cli) reconnect(args []string) error {
	return call(c, http.MethodPost, connectorURI(args[0], "/reconnect", c.userQuery()), nil, printReconnect(args[0], c.who()))
}

// remove runs `connectors remove`.
func (c *cli) remove(args []string) error {
	return call(c, http.MethodDelete, connectorURI(args[0], "", nil), nil, printRemove)
}

// tools runs `connectors tools`: it shows the selection, or registers
// one, or approves drifted tools.
func (c *cli) tools(args []string) error {
	id, names := args[0], args[1:]
	switch {
	case c.boolean("approve"):
		return c.approveTools(id, names)
	case len(names) > 0:
		return fmt.Errorf("unexpected arguments %q: only --approve takes tool names", names)
	case c.flags.Changed("register-prompts") && !c.flags.Changed("register"):
		return errors.New("--register-prompts goes with --register, which says the tools")
	case c.flags.Changed("register"):
		return c.registerTools(id)
	}
	q := c.userQuery()
	if c.boolean("discover") {
		q.Set("discover", "1")
	}
	return call(c, http.MethodGet, connectorURI(id, "/tools", q), nil, printTools)
}

// registerTools runs `connectors tools --register`.
func (c *cli) registerTools(id string) error {
	entries, _ := c.flags.GetStringSlice("register")
	req, err := registration(entries)
	if err != nil {
		return err
	}
	if c.flags.Changed("register-prompts") {
		prompts, _ := c.flags.GetStringSlice("register-prompts")
		req.Prompts = []registerEntry{}
		for _, name := range prompts {
			if name == "" {
				return errors.New("--register-prompts: a prompt name is empty")
			}
			req.Prompts = append(req.Prompts, registerEntry{Name: name})
		}
	}
	return call(c, http.MethodPut, connectorURI(id, "/tools", c.userQuery()), req, printRegistered(id))
}

// approveTools runs `connectors tools --approve`: names (prompt:<name>
// for a prompt), or else every drifted tool and prompt.
func (c *cli) approveTools(id string, names []string) error {
	var req approveRequest
	for _, n := range names {
		if p, ok := strings.CutPrefix(n, "prompt:"); ok {
			req.Prompts = append(req.Prompts, p)
		} else {
			req.Tools = append(req.Tools, n)
		}
	}
	return call(c, http.MethodPost, connectorURI(id, "/tools/approve", nil), req, printApproved(id))
}

// registration parses --register's <name>[=<operation>] entries.
func registration(entries []string) (registerRequest, error) {
	req := registerRequest{Tools: []registerEntry{}}
	for _, e := range entries {
		name, op, _ := strings.Cut(e, "=")
		if name == "" {
			return req, fmt.Errorf("--register %q: say <name>[=read|write]", e)
		}
		req.Tools = append(req.Tools, registerEntry{Name: name, Operation: op})
	}
	return req, nil
}

// diagnose runs `connectors diagnose`. A failed step fails the command,
// with --json too, so that scripts can check a connector.
func (c *cli) diagnose(args []string) error {
	uri := connectorURI(args[0], "/diagnose", nil)
	raw, err := c.request(http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	v, err := decode[diagnosis](raw, "GET "+uri)
	if err != nil {
		return err
	}
	if c.json {
		_, err = c.out.Write(raw)
	} else {
		err = printAligned(c.out, v, printDiagnosis(args[0]))
	}
	if err != nil {
		return err
	}
	if failed := failedStep(v); failed != "" {
		return fmt.Errorf("%s failed its diagnosis at %s", args[0], failed)
	}
	return nil
}

// failedStep names the step at which a diagnosis failed, or is "" if it
// did not.
func failedStep(v diagnosis) string {
	for _, s := range v.Steps {
		if !s.OK {
			return s.Name
		}
	}
	if !v.OK {
		return "a step that did not run"
	}
	return ""
}

// audit runs `audit`.
func (c *cli) audit([]string) error {
	q := url.Values{}
	for _, name := range []string{"since", "user", "connector", "kind"} {
		if v := c.str(name); v != "" {
			q.Set(name, v)
		}
	}
	if c.flags.Changed("limit") {
		limit, _ := c.flags.GetInt("limit")
		q.Set("limit", fmt.Sprint(limit))
	}
	uri := "/mcpgate/audit"
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	return call(c, http.MethodGet, uri, nil, printAudit)
}

// presets runs `presets`.
func (c *cli) presets([]string) error {
	return call(c, http.MethodGet, "/mcpgate/presets", nil, printPresets)
}
