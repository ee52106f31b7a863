package connectors

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// noPrepare is a prepare that lets every update go.
func noPrepare(Entry, Entry) error { return nil }

// mustUpdate patches connector id, failing the test on an error.
func mustUpdate(t *testing.T, r *Registry, id, patch string) Entry {
	t.Helper()
	e, err := r.Update(context.Background(), id, []byte(patch), noPrepare)
	if err != nil {
		t.Fatalf("updating %s with %s: %v", id, patch, err)
	}
	return e
}

// oauthAdd adds an OAuth connector id with a static client and scopes.
func oauthAdd(t *testing.T, r *Registry, id string) Entry {
	t.Helper()
	req := addRequest(id)
	req.Auth = &AuthConfig{Type: AuthOAuth, OAuth: &OAuthConfig{ClientID: "cid", ClientSecret: "first-secret", Scopes: Scopes{"read"}}}
	e, err := r.Add(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRegistryUpdate checks a merge patch of a runtime connector: the
// members given change, the others stay, null clears one, and the result
// is stored, announced and read back by a registry opened later.
func TestRegistryUpdate(t *testing.T) {
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{}, sealed)
	oauthAdd(t, r, "wiki")
	gen := r.Snapshot().Generation
	e := mustUpdate(t, r, "wiki", `{"title": "Wiki", "description": "Pages", "auth": {"oauth": {"scopes": "read, write\nadmin", "issuer": "https://as.example.com"}}}`)
	if e.Title != "Wiki" || e.Description != "Pages" || e.Updated.IsZero() {
		t.Errorf("updated entry = %+v", e)
	}
	o := e.Config.OAuth()
	if !slices.Equal(o.Scopes, []string{"admin", "read", "write"}) || o.Issuer != "https://as.example.com" ||
		o.ClientID != "cid" || o.ClientSecret != "first-secret" || e.Config.URL != "https://wiki.example.com/mcp" {
		t.Errorf("merged oauth = %+v, url %s: want the patched members and the rest kept", o, e.Config.URL)
	}
	if r.Snapshot().Generation != gen+1 {
		t.Errorf("generation %d, want %d: an update changes what the gateway serves", r.Snapshot().Generation, gen+1)
	}
	e = mustUpdate(t, r, "wiki", `{"title": null, "auth": {"oauth": {"issuer": null}}}`)
	if e.Title != "" || e.Description != "Pages" || e.Config.OAuth().Issuer != "" {
		t.Errorf("after clearing: %+v, issuer %q", e, e.Config.OAuth().Issuer)
	}
	reopened, _ := openRegistry(t, Options{}, sealed).Snapshot().Entry("wiki")
	if reopened.Description != "Pages" || !slices.Equal(reopened.Config.OAuth().Scopes, []string{"admin", "read", "write"}) || !reopened.Runtime {
		t.Errorf("stored entry = %+v", reopened)
	}
	c, err := r.Snapshot().Connector(reopened)
	if err != nil || c.Description != "Pages" {
		t.Errorf("built connector = %+v, %v: want the entry's description", c, err)
	}
}

// TestRegistryUpdateRefused checks the patches an update refuses, each
// with its kind, leaving the connector as it was.
func TestRegistryUpdateRefused(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}, Check: func(cfg Config, _ *Connector) error {
		if cfg.URL == "https://refused.example.com/mcp" {
			return errRefused
		}
		return nil
	}}, sealed)
	mustAdd(t, r, "wiki")
	for _, tc := range []struct {
		id, patch string
		kind      ErrorKind
		want      string
	}{
		{"nope", `{"title": "x"}`, KindNotFound, `no connector "nope"`},
		{"cfg", `{"title": "x"}`, KindConflict, `connector "cfg" is defined in the config, which the admin API cannot change but for enabled`},
		{"wiki", `{"titel": "x"}`, KindInvalid, "unknown field"},
		{"wiki", `{"Title": "x"}`, KindInvalid, "not spelled"},
		{"wiki", `{"title": "a", "title": "b"}`, KindInvalid, "not valid JSON"},
		{"wiki", `["title"]`, KindInvalid, "must be a JSON object"},
		{"wiki", `{"url": "ftp://wiki.example.com/mcp"}`, KindInvalid, "scheme must be http or https"},
		{"wiki", `{"url": null}`, KindInvalid, "url is required unless api is set"},
		{"wiki", `{"id": "other"}`, KindInvalid, `the id of connector "wiki" cannot change`},
		{"wiki", `{"enabled": "no"}`, KindInvalid, "enabled must be true or false"},
		{"wiki", `{"enabled": false, "disabled": false}`, KindInvalid, "enabled and disabled disagree"},
		{"wiki", `{"auth": {"type": "bearer", "token": "{env.HOME}"}}`, KindInvalid, "placeholders are not allowed"},
		{"wiki", `{"auth": {"type": "bearer"}}`, KindInvalid, "token is empty"},
		{"wiki", `{"url": "https://refused.example.com/mcp"}`, KindInvalid, errRefused.Error()},
	} {
		before := r.Snapshot()
		_, err := r.Update(ctx, tc.id, []byte(tc.patch), func(Entry, Entry) error {
			t.Errorf("%s: prepare ran for a refused patch", tc.patch)
			return nil
		})
		wantKind(t, err, tc.kind, tc.want)
		if r.Snapshot() != before {
			t.Errorf("%s: a refused update changed the snapshot", tc.patch)
		}
	}
	stored, _ := openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}}, sealed).Snapshot().Entry("wiki")
	if stored.Title != "" || stored.Config.URL != "https://wiki.example.com/mcp" {
		t.Errorf("stored after refusals: %+v", stored)
	}
}

// TestRegistryUpdatePrepare checks that prepare sees the connector as it
// is and as it will be, and that its error stops the update.
func TestRegistryUpdatePrepare(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{}, sealed)
	mustAdd(t, r, "wiki")
	before := r.Snapshot()
	_, err := r.Update(ctx, "wiki", []byte(`{"url": "https://other.example.com/mcp"}`), func(old, next Entry) error {
		if old.Config.URL != "https://wiki.example.com/mcp" || next.Config.URL != "https://other.example.com/mcp" {
			t.Errorf("prepare saw %s → %s", old.Config.URL, next.Config.URL)
		}
		return errRefused
	})
	if !errors.Is(err, errRefused) || r.Snapshot() != before {
		t.Errorf("Update = %v, want prepare's error and no change", err)
	}
	if _, err := r.Update(ctx, "wiki", []byte(`{}`), func(Entry, Entry) error { return errRefused }); err != nil || r.Snapshot() != before {
		t.Errorf("an empty patch: %v; it should change nothing and ask no prepare", err)
	}
}

// TestRegistryUpdateWatcherUndoes checks that a change the watcher
// refuses is neither in force nor left in storage.
func TestRegistryUpdateWatcherUndoes(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}}, sealed)
	mustAdd(t, r, "wiki")
	r.Watch(func(*Snapshot) error { return errRefused })
	for _, tc := range []struct{ id, patch string }{{"wiki", `{"title": "New"}`}, {"cfg", `{"enabled": false}`}} {
		if _, err := r.Update(ctx, tc.id, []byte(tc.patch), noPrepare); !errors.Is(err, errRefused) {
			t.Errorf("%s: Update = %v, want the watcher's error", tc.id, err)
		}
	}
	snap := openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}}, sealed).Snapshot()
	if wiki, _ := snap.Entry("wiki"); wiki.Title != "" {
		t.Errorf("storage holds the refused title %q", wiki.Title)
	}
	if cfg, _ := snap.Entry("cfg"); cfg.Config.Disabled {
		t.Error("storage holds the refused switch")
	}
}

// TestRegistryEnable checks enable and disable: a runtime connector's
// state is in its record; a config connector's is a switch beside the
// config that every registry on the storage reads, which cannot enable
// one that the config itself disables.
func TestRegistryEnable(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	configs := []Config{mcpConfig("cfg"), {ID: "off", URL: "https://off.example.com/mcp", Disabled: true}}
	r := openRegistry(t, Options{Config: configs}, sealed)
	mustAdd(t, r, "wiki")
	for _, id := range []string{"wiki", "cfg"} {
		if e := mustUpdate(t, r, id, `{"enabled": false}`); !e.Config.Disabled {
			t.Errorf("%s after disable: %+v", id, e)
		}
	}
	other := openRegistry(t, Options{Config: configs}, sealed).Snapshot()
	for _, id := range []string{"wiki", "cfg", "off"} {
		e, _ := other.Entry(id)
		c, err := other.Connector(e)
		if err != nil || !c.Disabled {
			t.Errorf("%s read by another registry: %+v, %v; want disabled", id, c, err)
		}
	}
	_, err := r.Update(ctx, "off", []byte(`{"enabled": true}`), noPrepare)
	wantKind(t, err, KindConflict, `connector "off" is disabled in the config`)
	for _, id := range []string{"wiki", "cfg"} {
		if e := mustUpdate(t, r, id, `{"enabled": true}`); e.Config.Disabled {
			t.Errorf("%s after enable: %+v", id, e)
		}
	}
	if _, err := sealed.Get(ctx, switchPrefix+"cfg"); err == nil {
		t.Error("the switch of an enabled config connector is still stored")
	}
	if e, _ := openRegistry(t, Options{Config: configs}, sealed).Snapshot().Entry("cfg"); e.Config.Disabled {
		t.Error("cfg is still disabled when read again")
	}
}

// TestRegistryTitles checks where a connector's title comes from: its own,
// else the preset whose URL it has, for config connectors as for runtime
// ones, also after an update moves it to a preset's URL.
func TestRegistryTitles(t *testing.T) {
	sealed, _ := sealedMemory(t)
	presets := []PresetConfig{{ID: "wiki", URL: "https://wiki.example.com/mcp", Title: "Wiki", Description: "The wiki"}}
	configs := []Config{
		{ID: "own", URL: "https://wiki.example.com/mcp", Title: "Our wiki"},
		{ID: "bare", URL: "https://wiki.example.com/mcp/"},
		mcpConfig("plain"),
	}
	r := openRegistry(t, Options{Config: configs, Presets: presets}, sealed)
	want := map[string][2]string{"own": {"Our wiki", "The wiki"}, "bare": {"Wiki", "The wiki"}, "plain": {"", ""}}
	for id, w := range want {
		e, _ := r.Snapshot().Entry(id)
		c, _ := r.Snapshot().Connector(e)
		if c.Title != w[0] || c.Description != w[1] {
			t.Errorf("%s: title %q, description %q; want %q", id, c.Title, c.Description, w)
		}
	}
	mustAdd(t, r, "moved")
	e := mustUpdate(t, r, "moved", `{"url": "https://wiki.example.com/mcp"}`)
	if e.Preset != "wiki" || e.Title != "Wiki" || e.Config.Auth != nil {
		t.Errorf("moved to the preset's URL: %+v; want its title, and no client taken", e)
	}
}

// TestTokenChanges checks which changes make a connector's tokens
// useless: the resource, where they are sent (the origin of the MCP server
// or of the API, with an explicit resource too), the audience, a
// configured issuer set, changed or cleared, the consent mode, the
// client, or OAuth itself; not a title, an endpoint, a client secret or a
// path on the same origin under an explicit resource. TokenBinding
// changes with each of them but the issuer, which the grants record
// themselves.
func TestTokenChanges(t *testing.T) {
	base := func() Config {
		return Config{ID: "w", URL: "https://w.example.com/mcp", Auth: &AuthConfig{Type: AuthOAuth, OAuth: &OAuthConfig{ClientID: "cid", ClientSecret: "s"}}}
	}
	withResource := func(c *Config) { c.Auth.OAuth.Resource = "https://w.example.com/mcp" }
	withIssuer := func(c *Config) { c.Auth.OAuth.Issuer = "https://as.example.com" }
	for _, tc := range []struct {
		name           string
		before, change func(c *Config)
		want           string
	}{
		{"title", nil, func(c *Config) { c.Title = "T" }, ""},
		{"secret", nil, func(c *Config) { c.Auth.OAuth.ClientSecret = "s2" }, ""},
		{"endpoint", nil, func(c *Config) { c.Auth.OAuth.TokenEndpoint = "https://as.example.com/token" }, ""},
		{"issuer still unset", nil, func(c *Config) { c.Auth.OAuth.Issuer = "" }, ""},
		{"scopes", nil, func(c *Config) { c.Auth.OAuth.Scopes = Scopes{"read"} }, ""},
		{"disabled", nil, func(c *Config) { c.Disabled = true }, ""},
		{"url", nil, func(c *Config) { c.URL = "https://v.example.com/mcp" }, "the resource"},
		{"url origin, resource kept", withResource, func(c *Config) { c.URL = "https://v.example.com/mcp" }, "the MCP server's origin"},
		{"url port, resource kept", withResource, func(c *Config) { c.URL = "https://w.example.com:8443/mcp" }, "the MCP server's origin"},
		{"url scheme, resource kept", withResource, func(c *Config) { c.URL = "http://w.example.com/mcp" }, "the MCP server's origin"},
		{"url path, resource kept", withResource, func(c *Config) { c.URL = "https://W.example.com:443/v2/mcp" }, ""},
		{"api added", nil, func(c *Config) { c.API = "https://api.example.com/v1" }, "the API's origin"},
		{"api origin, resource kept", func(c *Config) {
			withResource(c)
			c.API = "https://api.example.com/v1"
		}, func(c *Config) { c.API = "https://api2.example.com/v1" }, "the API's origin"},
		{"api path", func(c *Config) { c.API = "https://api.example.com/v1" }, func(c *Config) { c.API = "https://api.example.com/v2" }, ""},
		{"audience", nil, func(c *Config) { c.Auth.OAuth.Audience = "https://api.example.com" }, "the audience"},
		{"audience cleared", func(c *Config) { c.Auth.OAuth.Audience = "a" }, func(c *Config) { c.Auth.OAuth.Audience = "" }, "the audience"},
		{"issuer", nil, withIssuer, "the issuer"},
		{"issuer changed", withIssuer, func(c *Config) { c.Auth.OAuth.Issuer = "https://other.example.com" }, "the issuer"},
		{"issuer cleared", withIssuer, func(c *Config) { c.Auth.OAuth.Issuer = "" }, "the issuer"},
		{"consent", nil, func(c *Config) { c.Auth.OAuth.Consent = Shared }, "the consent mode"},
		{"consent default", nil, func(c *Config) { c.Auth.OAuth.Consent = PerUser }, ""},
		{"client", nil, func(c *Config) { c.Auth.OAuth.ClientID = "other" }, "the OAuth client"},
		{"several", nil, func(c *Config) {
			c.URL, c.Auth.OAuth.Audience, c.Auth.OAuth.Issuer = "https://v.example.com/mcp", "a", "https://as.example.com"
		}, "the resource, the audience, the issuer"},
		{"bearer", nil, func(c *Config) { c.Auth = &AuthConfig{Type: AuthBearer, Token: "t"} }, "the connector no longer uses OAuth"},
	} {
		old := base()
		if tc.before != nil {
			tc.before(&old)
		}
		next := old
		o := *old.Auth.OAuth
		next.Auth = &AuthConfig{Type: AuthOAuth, OAuth: &o}
		tc.change(&next)
		if got := strings.Join(TokenChanges(old, next), ", "); got != tc.want {
			t.Errorf("%s: TokenChanges = %q, want %q", tc.name, got, tc.want)
		}
		if next.OAuth() == nil {
			continue
		}
		bound := tc.want != "" && tc.want != IssuerChange
		if moved := binding(t, old) != binding(t, next); moved != bound {
			t.Errorf("%s: TokenBinding changed: %v, want %v", tc.name, moved, bound)
		}
	}
	dcr := Config{ID: "w", URL: "https://w.example.com/mcp", Auth: &AuthConfig{Type: AuthOAuth}}
	named := dcr
	named.Auth = &AuthConfig{Type: AuthOAuth, OAuth: &OAuthConfig{ClientName: "Acme"}}
	if got := TokenChanges(dcr, named); !slices.Equal(got, []string{"the OAuth client"}) {
		t.Errorf("a new client_name: %q, want the OAuth client", got)
	}
	if binding(t, dcr) == binding(t, named) {
		t.Error("a new client_name keeps the TokenBinding")
	}
	if got := TokenChanges(Config{ID: "w", URL: "https://w.example.com/mcp"}, dcr); got != nil {
		t.Errorf("taking OAuth up: %q, want no tokens to lose", got)
	}
}

// binding is the TokenBinding of OAuth connector cfg.
func binding(t *testing.T, cfg Config) string {
	t.Helper()
	c, err := cfg.Build()
	if err != nil {
		t.Fatalf("building %+v: %v", cfg, err)
	}
	return TokenBinding(c, *cfg.OAuth())
}
