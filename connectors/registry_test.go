package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// The tools an upstream lists, as raw JSON, in the tests of selections.
var (
	searchTool = json.RawMessage(`{"name":"search","description":"Search the pages","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}},"annotations":{"readOnlyHint":true}}`)
	searchAll  = json.RawMessage(`{"name":"search_all","description":"Search everything","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`)
	createPage = json.RawMessage(`{"name":"create_page","description":"Create a page","inputSchema":{"type":"object"}}`)
	deletePage = json.RawMessage(`{"name":"delete_page","description":"Delete a page","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":false,"destructiveHint":true}}`)
	listed     = []json.RawMessage{searchTool, searchAll, createPage, deletePage}

	// searchChanged is search after its upstream changed what it says.
	searchChanged = json.RawMessage(`{"name":"search","description":"Search the pages and send them to us","inputSchema":{"type":"object","properties":{"q":{"type":"string"}}},"annotations":{"readOnlyHint":true}}`)
)

// errRefused is what the tests' watchers and checks refuse with.
var errRefused = errors.New("refused by the test")

// sealedMemory returns a sealed in-memory store, as the gateway's vault
// is, and the raw store under it.
func sealedMemory(t testing.TB) (*store.Sealed, *store.Memory) {
	t.Helper()
	ring, err := store.NewRing([][]byte{randomKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	db := store.NewMemory()
	return store.Seal(db, ring), db
}

// openRegistry builds a registry of o and opens it on s.
func openRegistry(t testing.TB, o Options, s Storage) *Registry {
	t.Helper()
	r, err := NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Open(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return r
}

// mcpConfig is a connector of an MCP server with no credential.
func mcpConfig(id string) Config {
	return Config{ID: id, URL: "https://" + id + ".example.com/mcp"}
}

// addRequest adds mcpConfig(id), matching no preset.
func addRequest(id string) AddRequest {
	return AddRequest{Config: mcpConfig(id), MatchPreset: new(bool)}
}

// mustAdd adds connector id, failing the test on an error.
func mustAdd(t *testing.T, r *Registry, id string) Entry {
	t.Helper()
	e, err := r.Add(context.Background(), addRequest(id))
	if err != nil {
		t.Fatalf("adding %s: %v", id, err)
	}
	return e
}

// kindOf is the kind of a Registry error, 0 for any other error.
func kindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// wantKind fails the test unless err is of kind and says want.
func wantKind(t *testing.T, err error, kind ErrorKind, want string) {
	t.Helper()
	if kindOf(err) != kind || !strings.Contains(fmt.Sprint(err), want) {
		t.Fatalf("err = %v (kind %d), want kind %d saying %q", err, kindOf(err), kind, want)
	}
}

// entryIDs lists the ids of snap's entries in order, a runtime one
// marked with a '+'.
func entryIDs(snap *Snapshot) []string {
	var out []string
	for _, e := range snap.Entries {
		id := e.Config.ID
		if e.Runtime {
			id = "+" + id
		}
		out = append(out, id)
	}
	return out
}

// hashOf is the pin of a listed tool.
func hashOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	d, err := DefinitionOf(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d.Hash()
}

// TestNewRegistry checks the config's connectors as they enter: each
// built and checked, no id twice, and kept in config order.
func TestNewRegistry(t *testing.T) {
	var checked []string
	r, err := NewRegistry(Options{
		Config: []Config{mcpConfig("zeta"), mcpConfig("alpha"), {ID: "api", API: "https://api.example.com/v1"}},
		Check:  func(cfg Config, c *Connector) error { checked = append(checked, cfg.ID+"="+c.ID); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := r.Snapshot()
	if got := entryIDs(snap); !slices.Equal(got, []string{"zeta", "alpha", "api"}) {
		t.Errorf("entries = %v, want the config's in config order, none runtime", got)
	}
	if !slices.Equal(checked, []string{"zeta=zeta", "alpha=alpha", "api=api"}) {
		t.Errorf("Check saw %v", checked)
	}
	if snap.Generation != 0 || snap.Selection("zeta") != nil {
		t.Errorf("a new registry has generation %d and selection %v", snap.Generation, snap.Selection("zeta"))
	}

	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"twice", Options{Config: []Config{mcpConfig("a"), mcpConfig("b"), mcpConfig("a")}}, `connectors[2]: connector "a" is defined twice`},
		{"bad id", Options{Config: []Config{mcpConfig("Bad")}}, `connector id "Bad" must match`},
		{"bad url", Options{Config: []Config{{ID: "a", URL: "ftp://a.example.com/mcp"}}}, "connector a: url"},
		{"no upstream", Options{Config: []Config{{ID: "a"}}}, "url is required"},
		{"check", Options{Config: []Config{mcpConfig("a")}, Check: func(Config, *Connector) error { return errRefused }}, errRefused.Error()},
		{"bad preset", Options{Presets: []PresetConfig{{ID: "p", URL: "nowhere"}}}, "preset p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRegistry(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || r != nil {
				t.Fatalf("NewRegistry = %v, %v; want an error saying %q", r, err, tc.want)
			}
		})
	}
}

// TestRegistryOpen checks that a second registry on the same storage
// reads back what the first one wrote: its runtime connectors after the
// config's, in id order, and the selections, announcing each read.
func TestRegistryOpen(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	cfg := Options{Config: []Config{mcpConfig("zz-config")}}
	first := openRegistry(t, cfg, sealed)
	for _, id := range []string{"mid", "b-two", "a-one"} {
		mustAdd(t, first, id)
	}
	if _, err := first.Select(ctx, "b-two", listed, []Want{{Name: "search"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Select(ctx, "zz-config", listed, []Want{{Name: "create_page"}}); err != nil {
		t.Fatal(err)
	}

	second, err := NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var seen []uint64
	second.Watch(func(s *Snapshot) error { seen = append(seen, s.Generation); return nil })
	if err := second.Open(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	snap := second.Snapshot()
	if got := entryIDs(snap); !slices.Equal(got, []string{"zz-config", "+a-one", "+b-two", "+mid"}) {
		t.Errorf("entries = %v, want the config's, then the runtime ones by id", got)
	}
	if e, _ := snap.Entry("a-one"); e.Config.URL != "https://a-one.example.com/mcp" || e.Created.IsZero() {
		t.Errorf("a-one reads back as %+v", e)
	}
	for id, tool := range map[string]string{"b-two": "search", "zz-config": "create_page"} {
		if sel := snap.Selection(id); sel == nil || len(sel.Tools) != 1 || sel.Tools[tool].Pin == "" {
			t.Errorf("selection of %s reads back as %+v", id, sel)
		}
	}
	if err := second.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []uint64{1, 2}) || second.Snapshot().Generation != 2 {
		t.Errorf("announced generations %v, now %d; want Open and Reload each to make one", seen, second.Snapshot().Generation)
	}
}

// TestRegistryGeneration checks that every announced change makes one
// generation, and that a refused one makes none.
func TestRegistryGeneration(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{}, sealed)
	steps := []struct {
		name string
		do   func() error
	}{
		{"add", func() error { _, err := r.Add(ctx, addRequest("a")); return err }},
		{"select", func() error { _, err := r.Select(ctx, "a", listed, []Want{{Name: "search"}}); return err }},
		{"approve", func() error { _, _, err := r.Approve(ctx, "a", nil); return err }},
		{"reload", func() error { return r.Reload(ctx) }},
		{"remove", func() error { return r.Remove(ctx, "a", func(Entry) error { return nil }) }},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := r.Snapshot().Generation; got != uint64(i+2) {
			t.Errorf("after %s generation = %d, want %d", s.name, got, i+2)
		}
	}
	if _, err := r.Add(ctx, addRequest("Bad")); err == nil || r.Snapshot().Generation != uint64(len(steps)+1) {
		t.Errorf("a refused add: %v, generation %d", err, r.Snapshot().Generation)
	}
}

// TestRegistryOpenCorrupt checks that a record that does not read stops
// Open and Reload with an error naming it, and leaves the registry as it
// was.
func TestRegistryOpenCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write func(sealed *store.Sealed, raw *store.Memory) error
		want  string
	}{
		{"connector json", func(s *store.Sealed, _ *store.Memory) error {
			return s.Put(ctx, runtimePrefix+"broken", []byte(`{"config":`), 0)
		}, "runtime connector broken is corrupt"},
		{"connector seal", func(_ *store.Sealed, db *store.Memory) error {
			return db.Put(ctx, runtimePrefix+"broken", []byte(`{"config":{"id":"broken"}}`), 0)
		}, "reading runtime connector broken"},
		{"selection json", func(s *store.Sealed, _ *store.Memory) error {
			return s.Put(ctx, selectionPrefix+"broken", []byte(`{"tools":[]}`), 0)
		}, "tool selection broken is corrupt"},
		{"selection seal", func(_ *store.Sealed, db *store.Memory) error {
			return db.Put(ctx, selectionPrefix+"broken", []byte{1, 2, 3}, 0)
		}, "reading tool selection broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, db := sealedMemory(t)
			r := openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}}, sealed)
			mustAdd(t, r, "kept")
			before := r.Snapshot()
			if err := tc.write(sealed, db); err != nil {
				t.Fatal(err)
			}
			if err := r.Reload(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Reload = %v, want %q", err, tc.want)
			}
			if r.Snapshot() != before {
				t.Errorf("a failed Reload changed the snapshot")
			}
			fresh, err := NewRegistry(Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := fresh.Open(ctx, sealed); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRegistryAddRefused checks each reason Add refuses a connector, by
// its kind and message, and that a refused connector is not kept.
func TestRegistryAddRefused(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{
		Config: []Config{mcpConfig("cfg")},
		Check: func(cfg Config, _ *Connector) error {
			if cfg.ID == "unchecked" {
				return errRefused
			}
			return nil
		},
	}, sealed)
	mustAdd(t, r, "rt")
	before := r.Snapshot()
	for _, tc := range []struct {
		name string
		req  AddRequest
		kind ErrorKind
		want string
	}{
		{"empty id", addRequest(""), KindInvalid, `connector id "" must match`},
		{"upper case id", addRequest("Upper"), KindInvalid, "must match"},
		{"underscore id", addRequest("a_b"), KindInvalid, "must match"},
		{"reserved id", addRequest(Reserved), KindInvalid, "reserved"},
		{"config id", addRequest("cfg"), KindConflict, `connector "cfg" is defined in the config, which the admin API cannot change`},
		{"runtime id", addRequest("rt"), KindConflict, `connector "rt" already exists; remove it first to replace it`},
		{"check", addRequest("unchecked"), KindInvalid, errRefused.Error()},
		{"bad url", AddRequest{Config: Config{ID: "x", URL: "ftp://x.example.com/mcp"}}, KindInvalid, "scheme must be http or https"},
		{"no upstream", AddRequest{Config: Config{ID: "x"}}, KindInvalid, "url is required"},
		{"bad auth", AddRequest{Config: Config{ID: "x", URL: "https://x.example.com/mcp", Auth: &AuthConfig{Type: "basic"}}}, KindInvalid, `auth type "basic"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := r.Add(ctx, tc.req)
			wantKind(t, err, tc.kind, tc.want)
			if e.Config.ID != "" || r.Snapshot() != before {
				t.Errorf("a refused add returned %+v or changed the snapshot", e)
			}
		})
	}
	if keys, err := sealed.List(ctx, runtimePrefix); err != nil || len(keys) != 1 {
		t.Errorf("stored connectors = %v, %v; want only rt", keys, err)
	}
}

// TestRegistryAddPlaceholders checks that a runtime connector is taken
// literally: a placeholder in any value that the config would resolve is
// refused, and neither the placeholder nor what it would resolve to shows
// in the error. An admin API caller must not read the server's
// environment or files through the gateway.
func TestRegistryAddPlaceholders(t *testing.T) {
	ctx := context.Background()
	t.Setenv("MCPGATE_TEST_CANARY", "canary-value")
	home := os.Getenv("HOME")
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{}, sealed)
	fields := map[string]func(c *Config, p string){
		"url":         func(c *Config, p string) { c.URL = "https://x.example.com/" + p },
		"api":         func(c *Config, p string) { c.API = p },
		"auth token":  func(c *Config, p string) { c.Auth = &AuthConfig{Type: AuthBearer, Token: p} },
		"auth header": func(c *Config, p string) { c.Auth = &AuthConfig{Type: AuthHeader, Header: p, Value: "v"} },
		"auth value":  func(c *Config, p string) { c.Auth = &AuthConfig{Type: AuthHeader, Header: "X-Key", Value: p} },
	}
	for name, set := range map[string]func(o *OAuthConfig, p string){
		"client_id":              func(o *OAuthConfig, p string) { o.ClientID = p },
		"client_secret":          func(o *OAuthConfig, p string) { o.ClientID, o.ClientSecret = "id", p },
		"token_auth_method":      func(o *OAuthConfig, p string) { o.TokenAuthMethod = p },
		"audience":               func(o *OAuthConfig, p string) { o.Audience = p },
		"resource":               func(o *OAuthConfig, p string) { o.Resource = p },
		"issuer":                 func(o *OAuthConfig, p string) { o.Issuer = p },
		"authorization_endpoint": func(o *OAuthConfig, p string) { o.AuthorizationEndpoint = p },
		"token_endpoint":         func(o *OAuthConfig, p string) { o.TokenEndpoint = p },
		"registration_endpoint":  func(o *OAuthConfig, p string) { o.RegistrationEndpoint = p },
		"revocation_endpoint":    func(o *OAuthConfig, p string) { o.RevocationEndpoint = p },
	} {
		fields[name] = func(c *Config, p string) {
			o := &OAuthConfig{}
			set(o, p)
			c.Auth = &AuthConfig{Type: AuthOAuth, OAuth: o}
		}
	}
	for field, set := range fields {
		for _, p := range []string{"{env.HOME}", "{env.MCPGATE_TEST_CANARY}", "x{file./etc/passwd}"} {
			t.Run(field+" "+p, func(t *testing.T) {
				req := addRequest("x")
				set(&req.Config, p)
				_, err := r.Add(ctx, req)
				wantKind(t, err, KindInvalid, field+": placeholders are not allowed here")
				for _, secret := range []string{p, "canary-value", home, "/etc/passwd"} {
					if secret != "" && strings.Contains(err.Error(), secret) {
						t.Errorf("the error shows %q: %v", secret, err)
					}
				}
			})
		}
	}
	if keys, err := sealed.List(ctx, runtimePrefix); err != nil || len(keys) != 0 {
		t.Errorf("stored connectors = %v, %v; want none", keys, err)
	}
}

// TestRegistryAddPresets checks that a connector whose URL names a
// preset's server takes the preset's client, title and description where
// it has none of its own, and that MatchPreset=false keeps it as it is.
func TestRegistryAddPresets(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	var checked []Config
	r := openRegistry(t, Options{
		Presets: []PresetConfig{{ID: "wiki", URL: "https://wiki.example.com/mcp", ClientID: "wiki-client", ClientSecret: "wiki-secret", Title: "Wiki", Description: "The wiki"}},
		Check:   func(cfg Config, _ *Connector) error { checked = append(checked, cfg); return nil },
	}, sealed)
	const sameWiki = "HTTPS://Wiki.Example.com:443/mcp/"
	oauthClient := &AuthConfig{Type: AuthOAuth, OAuth: &OAuthConfig{ClientID: "own-client"}}
	no := new(bool)
	for _, tc := range []struct {
		name                          string
		req                           AddRequest
		preset, title, desc, clientID string
		auth                          AuthType
	}{
		{"preset", AddRequest{Config: Config{ID: "w1", URL: sameWiki}}, "wiki", "Wiki", "The wiki", "wiki-client", AuthOAuth},
		{"own title", AddRequest{Config: Config{ID: "w2", URL: sameWiki}, Title: "Ours"}, "wiki", "Ours", "The wiki", "wiki-client", AuthOAuth},
		{"own client", AddRequest{Config: Config{ID: "w3", URL: sameWiki, Auth: oauthClient}, Description: "Mine"}, "wiki", "Wiki", "Mine", "own-client", AuthOAuth},
		{"own credential", AddRequest{Config: Config{ID: "w4", URL: sameWiki, Auth: &AuthConfig{Type: AuthBearer, Token: "t"}}}, "wiki", "Wiki", "The wiki", "", AuthBearer},
		{"built in", AddRequest{Config: Config{ID: "lin", URL: "https://mcp.linear.app/mcp"}}, "linear", "Linear", "Issues, projects and cycles", "", AuthOAuth},
		{"no match", AddRequest{Config: Config{ID: "other", URL: "https://wiki.example.com/other"}}, "", "", "", "", AuthNone},
		{"match_preset false", AddRequest{Config: Config{ID: "w5", URL: sameWiki}, MatchPreset: no}, "", "", "", "", AuthNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := r.Add(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if e.Preset != tc.preset || e.Title != tc.title || e.Description != tc.desc || !e.Runtime || e.Created.IsZero() {
				t.Errorf("entry = %+v", e)
			}
			var auth AuthType
			if e.Config.Auth != nil {
				auth = e.Config.Auth.Type
			}
			o := e.Config.OAuth()
			if auth != tc.auth || (o != nil && o.ClientID != tc.clientID) || (o == nil && tc.clientID != "") {
				t.Errorf("auth = %+v, oauth %+v; want %q with client %q", e.Config.Auth, o, tc.auth, tc.clientID)
			}
			if last := checked[len(checked)-1]; last.OAuth() != nil && last.OAuth().ClientID != tc.clientID {
				t.Errorf("Check saw the connector before the preset applied: %+v", last.Auth)
			}
			if got, _ := r.Snapshot().Entry(tc.req.ID); got.Preset != e.Preset || got.Title != e.Title {
				t.Errorf("the snapshot holds %+v, Add returned %+v", got, e)
			}
		})
	}
	if oauthClient.OAuth.ClientSecret != "" {
		t.Errorf("Add changed the request's client: %+v", oauthClient.OAuth)
	}
	reread := openRegistry(t, Options{}, sealed)
	if e, _ := reread.Snapshot().Entry("w1"); e.Preset != "wiki" || e.Config.OAuth().ClientSecret != "wiki-secret" {
		t.Errorf("w1 reads back as %+v", e)
	}
}

// TestRegistryAddKept checks that an added connector is in storage and in
// the snapshot, that a watcher's error undoes it, and that nothing is
// added before there is a store to keep it in.
func TestRegistryAddKept(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{}, sealed)
	var announced []string
	r.Watch(func(s *Snapshot) error {
		announced = append(announced, strings.Join(entryIDs(s), ","))
		if _, refused := s.Entry("refused"); refused {
			return errRefused
		}
		return nil
	})
	mustAdd(t, r, "kept")
	before := r.Snapshot()
	_, err := r.Add(ctx, addRequest("refused"))
	wantKind(t, err, KindInvalid, errRefused.Error())
	if !errors.Is(err, errRefused) || r.Snapshot() != before {
		t.Errorf("a refused add: %v; the snapshot changed: %v", err, r.Snapshot() != before)
	}
	if _, err := sealed.Get(ctx, runtimePrefix+"refused"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused connector is still stored: %v", err)
	}
	if !slices.Equal(announced, []string{"+kept", "+kept,+refused"}) {
		t.Errorf("announced %q", announced)
	}
	reread := openRegistry(t, Options{}, sealed)
	if got := entryIDs(reread.Snapshot()); !slices.Equal(got, []string{"+kept"}) {
		t.Errorf("storage holds %v", got)
	}

	unopened, err := NewRegistry(Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = unopened.Add(ctx, addRequest("early"))
	wantKind(t, err, KindStorage, "not open")
}

// TestRegistryStoreFails checks that a store that fails makes a
// KindStorage error and changes nothing the gateway serves.
func TestRegistryStoreFails(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenBadger(t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r := openRegistry(t, Options{}, db)
	mustAdd(t, r, "kept")
	before := r.Snapshot()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = r.Add(ctx, addRequest("late"))
	wantKind(t, err, KindStorage, "storing connector late")
	err = r.Remove(ctx, "kept", func(Entry) error { return nil })
	wantKind(t, err, KindStorage, "removing the tool selection of kept")
	_, err = r.Select(ctx, "kept", listed, []Want{{Name: "search"}})
	wantKind(t, err, KindStorage, "storing the tool selection of kept")
	if r.Snapshot() != before {
		t.Errorf("a failed store changed the snapshot")
	}
}

// TestRegistryRemove checks the removal of a runtime connector: refused
// for one unknown or the config's, stopped by prepare's error, and
// otherwise gone with its selection, from storage and snapshot.
func TestRegistryRemove(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}}, sealed)
	mustAdd(t, r, "gone")
	mustAdd(t, r, "stays")
	for _, id := range []string{"gone", "stays"} {
		if _, err := r.Select(ctx, id, listed, []Want{{Name: "search"}}); err != nil {
			t.Fatal(err)
		}
	}
	never := func(e Entry) error { t.Errorf("prepare ran for %s", e.Config.ID); return nil }
	wantKind(t, r.Remove(ctx, "nope", never), KindNotFound, `no connector "nope"`)
	wantKind(t, r.Remove(ctx, "cfg", never), KindConflict, `connector "cfg" is defined in the config, which the admin API cannot change`)

	before := r.Snapshot()
	if err := r.Remove(ctx, "gone", func(Entry) error { return errRefused }); !errors.Is(err, errRefused) {
		t.Errorf("Remove = %v, want prepare's error", err)
	}
	if r.Snapshot() != before {
		t.Errorf("a stopped removal changed the snapshot")
	}
	for _, key := range []string{runtimePrefix + "gone", selectionPrefix + "gone"} {
		if _, err := sealed.Get(ctx, key); err != nil {
			t.Errorf("a stopped removal removed %s: %v", key, err)
		}
	}

	var prepared Entry
	if err := r.Remove(ctx, "gone", func(e Entry) error { prepared = e; return nil }); err != nil {
		t.Fatal(err)
	}
	if prepared.Config.ID != "gone" || !prepared.Runtime {
		t.Errorf("prepare saw %+v", prepared)
	}
	checkRemoved(t, sealed, r.Snapshot(), "gone")
	checkRemoved(t, sealed, openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}}, sealed).Snapshot(), "gone")

	unopened, err := NewRegistry(Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantKind(t, unopened.Remove(ctx, "gone", never), KindStorage, "not open")
}

// checkRemoved checks that connector id and its selection are gone from
// s and snap, and that the others are still there.
func checkRemoved(t *testing.T, s Storage, snap *Snapshot, id string) {
	t.Helper()
	ctx := context.Background()
	for _, key := range []string{runtimePrefix + id, selectionPrefix + id} {
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s after the removal: %v", key, err)
		}
	}
	if got := entryIDs(snap); !slices.Equal(got, []string{"cfg", "+stays"}) || snap.Selection(id) != nil {
		t.Errorf("entries after the removal = %v, selection %v", got, snap.Selection(id))
	}
	if snap.Selection("stays") == nil {
		t.Errorf("the removal took another connector's selection")
	}
}

// TestRegistrySelect checks how a selection is made from the tools an
// upstream lists: names and globs, the last matching entry deciding the
// operation, readOnlyHint deciding without one.
func TestRegistrySelect(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{}, sealed)
	mustAdd(t, r, "wiki")
	for _, tc := range []struct {
		name string
		want []Want
		ops  map[string]Operation
	}{
		{"by name", []Want{{Name: "search"}, {Name: "create_page"}}, map[string]Operation{"search": Read, "create_page": Write}},
		{"glob", []Want{{Name: "*_page"}}, map[string]Operation{"create_page": Write, "delete_page": Write}},
		{"glob prefix", []Want{{Name: "search*"}}, map[string]Operation{"search": Read, "search_all": Read}},
		{"operation chosen", []Want{{Name: "search", Operation: Write}, {Name: "create_page", Operation: Read}}, map[string]Operation{"search": Write, "create_page": Read}},
		{"last entry decides", []Want{{Name: "*", Operation: Read}, {Name: "delete_page", Operation: Write}},
			map[string]Operation{"search": Read, "search_all": Read, "create_page": Read, "delete_page": Write}},
		{"last entry decides the other way", []Want{{Name: "delete_page", Operation: Write}, {Name: "*_page", Operation: Read}},
			map[string]Operation{"create_page": Read, "delete_page": Read}},
		{"a later entry without an operation", []Want{{Name: "search", Operation: Write}, {Name: "search"}}, map[string]Operation{"search": Read}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := r.Select(ctx, "wiki", listed, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Operation{}
			for name, st := range sel.Tools {
				got[name] = st.Operation
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.ops) {
				t.Errorf("selected %v, want %v", got, tc.ops)
			}
			if r.Snapshot().Selection("wiki") != sel {
				t.Errorf("the snapshot does not hold the new selection")
			}
		})
	}

	malformed := json.RawMessage(`{"name":"broken","description":5}`)
	withBroken := append(slices.Clone(listed), malformed, json.RawMessage(`"not a tool"`), json.RawMessage(`{"description":"no name"}`))
	if _, err := r.Select(ctx, "wiki", withBroken, []Want{{Name: "search"}}); err != nil {
		t.Errorf("a malformed tool that no entry names stopped the selection: %v", err)
	}
	before := r.Snapshot()
	_, err := r.Select(ctx, "wiki", withBroken, []Want{{Name: "b*"}})
	wantKind(t, err, KindUpstream, "tool broken of wiki has a malformed definition")
	_, err = r.Select(ctx, "wiki", listed, []Want{{Name: "search"}, {Name: "nothing*"}})
	wantKind(t, err, KindInvalid, `no tool of wiki matches "nothing*"`)
	_, err = r.Select(ctx, "nope", listed, []Want{{Name: "search"}})
	wantKind(t, err, KindNotFound, `no connector "nope"`)
	if r.Snapshot() != before {
		t.Errorf("a refused selection changed the snapshot")
	}
}

// TestRegistrySelectApplies checks what a selection does to the
// connector the gateway serves: only the selected tools, each with its
// operation and pinned, and never a tool the config's allow-list leaves
// out.
func TestRegistrySelectApplies(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	narrow := mcpConfig("narrow")
	narrow.Tools = &ToolsConfig{Allow: []string{"search", "create_page"}, Operations: map[string]Operation{"create_page": Read}}
	r := openRegistry(t, Options{Config: []Config{narrow}}, sealed)
	if _, err := r.Select(ctx, "narrow", listed, []Want{{Name: "search"}, {Name: "delete_page"}, {Name: "create_page"}}); err != nil {
		t.Fatal(err)
	}
	snap := r.Snapshot()
	e, _ := snap.Entry("narrow")
	c, err := snap.Connector(e)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Tools
	if !slices.Equal(p.Allow, []string{"create_page", "search"}) {
		t.Errorf("allowed %v, want the selected tools that the config allows", p.Allow)
	}
	if p.Allows("search_all") || p.Allows("delete_page") {
		t.Errorf("a tool outside the selection or the config's allow-list is allowed")
	}
	if p.Operation("create_page", false) != Read || p.Operation("search", false) != Read {
		t.Errorf("operations = %v", p.Operations)
	}
	if p.Pins["search"] != hashOf(t, searchTool) || !p.Pinned("search", searchTool) || p.Pinned("search", searchChanged) {
		t.Errorf("pins = %v", p.Pins)
	}
	if narrow.Tools.Allow[0] != "search" || len(narrow.Tools.Operations) != 1 {
		t.Errorf("applying the selection changed the config: %+v", narrow.Tools)
	}

	unselected := mustAdd(t, r, "open")
	c, err = r.Snapshot().Connector(unselected)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tools.Allow != nil || c.Tools.Pins != nil {
		t.Errorf("a connector with no selection serves %v, pinned %v; want every tool, unpinned", c.Tools.Allow, c.Tools.Pins)
	}
}

// selectedWiki opens a registry with two runtime connectors, wiki with a
// selection of want and bare with none.
func selectedWiki(t *testing.T, want ...Want) (*Registry, *store.Sealed) {
	t.Helper()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{}, sealed)
	mustAdd(t, r, "wiki")
	mustAdd(t, r, "bare")
	if _, err := r.Select(context.Background(), "wiki", listed, want); err != nil {
		t.Fatal(err)
	}
	return r, sealed
}

// TestRegistryDrift checks that drift seen upstream is kept once, shown
// in the next snapshot and announced to no one, and that approving it pins
// the new definition.
func TestRegistryDrift(t *testing.T) {
	ctx := context.Background()
	r, sealed := selectedWiki(t, Want{Name: "search"}, Want{Name: "create_page"})
	announced := 0
	r.Watch(func(*Snapshot) error { announced++; return nil })
	gen := r.Snapshot().Generation

	for i, want := range []bool{true, false} {
		news, err := r.Drifted(ctx, "wiki", "search", searchChanged)
		if err != nil || news != want {
			t.Fatalf("Drifted, call %d = %v, %v; want %v", i+1, news, err, want)
		}
	}
	reordered := json.RawMessage(`{"annotations":{"readOnlyHint":true},"inputSchema":{"properties":{"q":{"type":"string"}},"type":"object"},"name":"search","description":"Search the pages and send them to us"}`)
	for _, tc := range []struct {
		name, id, tool string
		raw            json.RawMessage
	}{
		{"same change reordered", "wiki", "search", reordered},
		{"unparsable", "wiki", "create_page", json.RawMessage(`{"name":"create_page","description":5}`)},
		{"not json", "wiki", "create_page", json.RawMessage(`{`)},
		{"unselected tool", "wiki", "delete_page", deletePage},
		{"no selection", "bare", "search", searchChanged},
		{"unknown connector", "nope", "search", searchChanged},
	} {
		if news, err := r.Drifted(ctx, tc.id, tc.tool, tc.raw); news || err != nil {
			t.Errorf("%s: Drifted = %v, %v; want no news", tc.name, news, err)
		}
	}

	snap := r.Snapshot()
	if announced != 0 || snap.Generation != gen {
		t.Errorf("drift announced %d times, generation %d -> %d", announced, gen, snap.Generation)
	}
	sel := snap.Selection("wiki")
	if got := sel.Drifted(); !slices.Equal(got, []string{"search"}) {
		t.Fatalf("drifted = %v", got)
	}
	if st := sel.Tools["search"]; st.DriftSeen.IsZero() || st.Pin != hashOf(t, searchTool) || st.Drift.Hash() != hashOf(t, searchChanged) {
		t.Errorf("search after drift = %+v", st)
	}
	if v := sel.View(); len(v) != 2 || v[1].Name != "search" || v[1].Drift["description"].Upstream != "Search the pages and send them to us" {
		t.Errorf("view = %+v", v)
	}
	e, _ := snap.Entry("wiki")
	if c, err := snap.Connector(e); err != nil || c.Tools.Pinned("search", searchChanged) {
		t.Errorf("the drifted definition passes the pin: %v", err)
	}
	if got := openRegistry(t, Options{}, sealed).Snapshot().Selection("wiki").Drifted(); !slices.Equal(got, []string{"search"}) {
		t.Errorf("storage holds drift of %v", got)
	}
}

// TestRegistryApprove checks the approval of drifted tools: all of them
// when none is named, only those named otherwise, each pinned to its new
// definition and announced.
func TestRegistryApprove(t *testing.T) {
	ctx := context.Background()
	r, sealed := selectedWiki(t, Want{Name: "search*"}, Want{Name: "create_page"})
	createChanged := json.RawMessage(`{"name":"create_page","description":"Create a page","inputSchema":{"type":"object","required":["title"]}}`)
	allChanged := json.RawMessage(`{"name":"search_all","description":"Search everything, everywhere"}`)
	for tool, raw := range map[string]json.RawMessage{"search": searchChanged, "create_page": createChanged, "search_all": allChanged} {
		if news, err := r.Drifted(ctx, "wiki", tool, raw); !news || err != nil {
			t.Fatalf("Drifted(%s) = %v, %v", tool, news, err)
		}
	}

	_, _, err := r.Approve(ctx, "wiki", []string{"search", "delete_page"})
	wantKind(t, err, KindInvalid, "tool delete_page of wiki has not drifted")
	_, _, err = r.Approve(ctx, "bare", nil)
	wantKind(t, err, KindNotFound, "connector bare has no tool selection")
	_, _, err = r.Approve(ctx, "nope", nil)
	wantKind(t, err, KindNotFound, `no connector "nope"`)
	if got := r.Snapshot().Selection("wiki").Drifted(); len(got) != 3 {
		t.Fatalf("a refused approval approved some: drifted %v", got)
	}

	gen := r.Snapshot().Generation
	sel, names, err := r.Approve(ctx, "wiki", []string{"search_all"})
	if err != nil || !slices.Equal(names, []string{"search_all"}) || !slices.Equal(sel.Drifted(), []string{"create_page", "search"}) {
		t.Fatalf("Approve(search_all) = %v, %v, %v", names, sel.Drifted(), err)
	}
	sel, names, err = r.Approve(ctx, "wiki", nil)
	if err != nil || !slices.Equal(names, []string{"create_page", "search"}) || len(sel.Drifted()) != 0 {
		t.Fatalf("Approve() = %v, %v, %v; want every drifted tool", names, sel.Drifted(), err)
	}
	snap := r.Snapshot()
	if snap.Generation != gen+2 || snap.Selection("wiki") != sel {
		t.Errorf("generation %d -> %d; the snapshot holds the approved selection: %v", gen, snap.Generation, snap.Selection("wiki") == sel)
	}
	e, _ := snap.Entry("wiki")
	c, err := snap.Connector(e)
	if err != nil {
		t.Fatal(err)
	}
	for tool, raw := range map[string]json.RawMessage{"search": searchChanged, "create_page": createChanged, "search_all": allChanged} {
		st := sel.Tools[tool]
		if st.Pin != hashOf(t, raw) || st.Drift != nil || !st.DriftSeen.IsZero() || !c.Tools.Pinned(tool, raw) {
			t.Errorf("%s after approval = %+v", tool, st)
		}
	}
	if st := openRegistry(t, Options{}, sealed).Snapshot().Selection("wiki").Tools["search"]; st.Pin != hashOf(t, searchChanged) {
		t.Errorf("storage holds the pin %s", st.Pin)
	}
}

// TestRegistryConcurrent changes the registry from several goroutines at
// once, with a watcher that reads the snapshot, as the gateway's does:
// run under -race, no change may race or get lost.
func TestRegistryConcurrent(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := openRegistry(t, Options{Config: []Config{mcpConfig("cfg")}}, sealed)
	var announced int
	r.Watch(func(next *Snapshot) error {
		announced++
		if cur := r.Snapshot(); next.Generation != cur.Generation+1 {
			return fmt.Errorf("generation %d follows %d", next.Generation, cur.Generation)
		}
		for _, e := range next.Entries {
			if _, err := next.Connector(e); err != nil {
				return err
			}
		}
		return nil
	})
	const workers, rounds, n = 8, 6, 8 * 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for i := range workers {
		wg.Go(func() { errs <- changeSome(ctx, r, i, rounds) })
		wg.Go(func() { errs <- readSnapshots(r) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	snap := r.Snapshot()
	if len(snap.Entries) != n+1 || announced != 2*n || snap.Generation != uint64(2*n+1) {
		t.Errorf("%d entries, %d announced, generation %d; want %d, %d, %d", len(snap.Entries), announced, snap.Generation, n+1, 2*n, 2*n+1)
	}
	for _, e := range snap.Entries[1:] {
		if sel := snap.Selection(e.Config.ID); sel == nil || !slices.Equal(sel.Drifted(), []string{"search"}) {
			t.Errorf("selection of %s = %+v", e.Config.ID, sel)
		}
	}
}

// changeSome adds connectors, selects their tools and records a drift
// of each, rounds times.
func changeSome(ctx context.Context, r *Registry, worker, rounds int) error {
	for j := range rounds {
		if err := changeOne(ctx, r, fmt.Sprintf("c-%d-%d", worker, j)); err != nil {
			return err
		}
	}
	return nil
}

// changeOne adds connector id, selects its tools and records a drift.
func changeOne(ctx context.Context, r *Registry, id string) error {
	if _, err := r.Add(ctx, addRequest(id)); err != nil {
		return err
	}
	if _, err := r.Select(ctx, id, listed, []Want{{Name: "search"}}); err != nil {
		return err
	}
	if news, err := r.Drifted(ctx, id, "search", searchChanged); !news || err != nil {
		return fmt.Errorf("drift of %s: %v, %v", id, news, err)
	}
	return nil
}

// readSnapshots reads the registry's snapshots while others change it.
func readSnapshots(r *Registry) error {
	for range 50 {
		snap := r.Snapshot()
		for _, e := range snap.Entries {
			if _, err := snap.Connector(e); err != nil {
				return err
			}
			_ = snap.Selection(e.Config.ID).View()
		}
	}
	return nil
}

// TestRegistryWatcherUndoes checks the promise of Watch for every change
// it announces: the watcher's error is the change's error, and undoes it,
// in the snapshot and in storage alike, so that the next Open does not put
// in force what the watcher refused.
func TestRegistryWatcherUndoes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(r *Registry) error
	}{
		{"select", func(r *Registry) error { _, err := r.Select(ctx, "wiki", listed, []Want{{Name: "*"}}); return err }},
		{"first select", func(r *Registry) error { _, err := r.Select(ctx, "bare", listed, []Want{{Name: "*"}}); return err }},
		{"approve", func(r *Registry) error { _, _, err := r.Approve(ctx, "wiki", nil); return err }},
		{"remove", func(r *Registry) error { return r.Remove(ctx, "wiki", func(Entry) error { return nil }) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, sealed := selectedWiki(t, Want{Name: "search"})
			if _, err := r.Drifted(ctx, "wiki", "search", searchChanged); err != nil {
				t.Fatal(err)
			}
			before := r.Snapshot()
			r.Watch(func(*Snapshot) error { return errRefused })
			if err := tc.change(r); !errors.Is(err, errRefused) {
				t.Fatalf("the change = %v, want the watcher's error", err)
			}
			if r.Snapshot() != before {
				t.Errorf("a refused change is in force")
			}
			stored := openRegistry(t, Options{}, sealed).Snapshot()
			if got, want := entryIDs(stored), entryIDs(before); !slices.Equal(got, want) {
				t.Errorf("storage holds %v, the snapshot %v", got, want)
			}
			for _, id := range []string{"wiki", "bare"} {
				if got, want := stored.Selection(id).View(), before.Selection(id).View(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("storage holds the selection of %s %+v, the snapshot %+v", id, got, want)
				}
			}
		})
	}
}

// TestRegistryShadowed checks a runtime connector whose id the config
// took since it was added: the config's wins, so that a stored record
// can never stop the gateway starting, and the shadowed id is named.
func TestRegistryShadowed(t *testing.T) {
	sealed, _ := sealedMemory(t)
	first := openRegistry(t, Options{}, sealed)
	mustAdd(t, first, "wiki")
	mustAdd(t, first, "notes")
	next := openRegistry(t, Options{Config: []Config{{ID: "wiki", URL: "https://config.example.com/mcp"}}}, sealed)
	snap := next.Snapshot()
	if got := entryIDs(snap); !slices.Equal(got, []string{"wiki", "+notes"}) {
		t.Errorf("entries = %v, want the config's wiki and the runtime notes", got)
	}
	if e, _ := snap.Entry("wiki"); e.Runtime || e.Config.URL != "https://config.example.com/mcp" {
		t.Errorf("wiki = %+v, want the config's", e)
	}
	if !slices.Equal(snap.Shadowed, []string{"wiki"}) {
		t.Errorf("shadowed = %v, want [wiki]", snap.Shadowed)
	}
}

// TestRegistrySelectChecksWants checks that Select refuses a malformed
// request itself, before it reads anything, whoever calls it.
func TestRegistrySelectChecksWants(t *testing.T) {
	r := openRegistry(t, Options{Config: []Config{mcpConfig("wiki")}}, func() Storage { s, _ := sealedMemory(t); return s }())
	for _, want := range []Want{{Name: ""}, {Name: "[a"}, {Name: "search", Operation: "delete"}} {
		_, err := r.Select(context.Background(), "wiki", listed, []Want{want})
		wantKind(t, err, KindInvalid, "")
	}
	if r.Snapshot().Selection("wiki") != nil {
		t.Error("a refused selection was kept")
	}
}

// TestRegistryApproveTwice checks that a tool named twice in one
// approval is approved once, not refused as not drifted the second time.
func TestRegistryApproveTwice(t *testing.T) {
	ctx := context.Background()
	r, _ := selectedWiki(t, Want{Name: "search"})
	if _, err := r.Drifted(ctx, "wiki", "search", searchChanged); err != nil {
		t.Fatal(err)
	}
	_, names, err := r.Approve(ctx, "wiki", []string{"search", "search"})
	if err != nil || !slices.Equal(names, []string{"search"}) {
		t.Fatalf("Approve(search, search) = %v, %v", names, err)
	}
}
