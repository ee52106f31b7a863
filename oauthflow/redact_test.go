package oauthflow

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

func TestRedactingFormatters(t *testing.T) {
	// Every type that holds a secret prints REDACTED, through every verb,
	// JSON and zap.
	values := []any{
		Config{Connector: "n", OAuthConfig: connectors.OAuthConfig{ClientID: "id", ClientSecret: "SECRET-CANARY-cfg"}},
		clientRecord{ClientID: "id", ClientSecret: "SECRET-CANARY-client"},
		flowRecord{Connector: "n", Verifier: "VERIFIER-CANARY"},
		grantRecord{AccessToken: "AT-CANARY", RefreshToken: "RT-CANARY", DPoPKey: "DPOP-KEY-CANARY", Scopes: []string{"x"}},
		Token{Header: "Bearer AT-CANARY", Key: "oauth:1"},
		&entry{rec: grantRecord{AccessToken: "AT-CANARY"}, token: Token{Header: "Bearer AT-CANARY"}},
		client{ID: "id", Secret: "SECRET-CANARY-c"},
		tokenResponse{AccessToken: "AT-CANARY", RefreshToken: "RT-CANARY"},
		registration{ClientID: "id", ClientSecret: "SECRET-CANARY-r"},
		revocationRecord{Connector: "n", AccessToken: "AT-CANARY", RefreshToken: "RT-CANARY"},
	}
	core, logs := newObserved()
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out := fmt.Sprintf(verb, v)
			assertNoCanary(t, fmt.Sprintf("%s of %T", verb, v), out)
			if !strings.Contains(out, redacted) && verb != "%x" {
				t.Errorf("%s of %T shows no REDACTED: %s", verb, v, out)
			}
		}
		// Inside other values, too.
		assertNoCanary(t, fmt.Sprintf("nested %T", v), fmt.Sprintf("%+v", struct{ V any }{v}))
		assertNoCanary(t, fmt.Sprintf("slice %T", v), fmt.Sprintf("%v", []any{v}))
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshalling %T: %v", v, err)
		}
		assertNoCanary(t, fmt.Sprintf("json of %T", v), string(b))
		zap.New(core).Info("value", zap.Any("v", v), zap.Reflect("r", v), zap.Stringer("s", stringer{v}))
	}
	for _, e := range logs.All() {
		assertNoCanary(t, "zap", fmt.Sprint(e.ContextMap()))
	}
}

type stringer struct{ v any }

func (s stringer) String() string { return fmt.Sprint(s.v) }

func TestStoredFormKeepsSecrets(t *testing.T) {
	// The redaction must not reach the store.
	g := grantRecord{AccessToken: "AT-CANARY", RefreshToken: "RT-CANARY", Expiry: time.Unix(5, 0).UTC()}
	st := newMemStore(time.Now)
	if err := putJSON(context.Background(), st, "k", (*grantWire)(&g), 0); err != nil {
		t.Fatal(err)
	}
	var back grantRecord
	if err := getJSON(context.Background(), st, "k", (*grantWire)(&back)); err != nil {
		t.Fatal(err)
	}
	if back.AccessToken != g.AccessToken || back.RefreshToken != g.RefreshToken || !back.Expiry.Equal(g.Expiry) {
		t.Fatalf("round trip lost secrets: %v", back)
	}
}

func TestServerErrorsLeakNothing(t *testing.T) {
	// Token, refresh and revocation endpoints answer 500 with bodies
	// that echo the client secret and the tokens.
	h := newHarness(t, nil)
	ctx := context.Background()
	h.connect(h.as, "notion", "alice")
	g := h.grant("notion", "alice")
	var secret string
	h.as.mu.Lock()
	secret = h.as.clients[g.ClientID]
	h.as.mu.Unlock()
	// The server echoes what it received: the secret and every token,
	// code and verifier of the request.
	echo := func(w http.ResponseWriter, r request) bool {
		body := fmt.Sprintf(`{"error":"server_error","error_description":"secret %s rt %s code %s verifier %s token %s SERVER-TEXT"}`,
			secret, r.form.Get("refresh_token"), r.form.Get("code"), r.form.Get("code_verifier"), r.form.Get("token"))
		if r.form.Get("token_type_hint") == "access_token" { // and not even JSON
			body = "Internal error: " + secret + " " + r.form.Get("token")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		w.Write([]byte(body))
		return true
	}
	h.as.set(func(a *fakeAS) { a.onToken, a.onRevoke = echo, echo })
	var errs []string
	h.expire()
	_, err := h.token("notion", "alice")
	errs = append(errs, fmt.Sprint(err))
	authURL, _ := h.m.Start(ctx, "notion", "alice", "")
	_, err = h.m.Callback(ctx, h.as.authorize(t, authURL, "alice"), "alice")
	errs = append(errs, fmt.Sprint(err))
	rev, err := h.m.Disconnect(ctx, "notion", "alice", "")
	errs = append(errs, fmt.Sprint(err), rev.Detail)
	for _, e := range errs {
		// The server's own text may show, the secrets it echoed may not.
		if strings.Contains(e, secret) || strings.Contains(e, "RT-") || strings.Contains(e, "AT-") || strings.Contains(e, "CODE-") {
			t.Errorf("error leaks: %s", e)
		}
	}
	if !strings.Contains(errs[0], "server_error") || !strings.Contains(errs[3], "500") {
		t.Errorf("errors lost their cause: %q", errs)
	}
	assertNoCanary(t, "logs", h.logText())
}

func TestCanarySweep(t *testing.T) {
	// No secret leaks within the package: run the flows, then grep every
	// log line and every error for canaries.
	h := newHarness(t, nil)
	ctx := context.Background()
	h.connect(h.as, "notion", "alice")
	h.expire()
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatalf("the refresh: %v", err)
	}
	_, stepUp := h.m.Token(ctx, TokenRequest{Connector: "notion", User: "alice", Refused: "Bearer x", Challenge: `Bearer error="insufficient_scope", scope="more"`})
	if stepUp == nil {
		t.Fatal("insufficient_scope asked for no new consent")
	}
	assertNoCanary(t, "the step-up error", stepUp.Error())
	h.connect(h.as, "notion", "alice")
	if _, err := h.m.Disconnect(ctx, "notion", "alice", ""); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	assertNoCanary(t, "logs", h.logText())
	if len(h.logs.All()) == 0 {
		t.Fatal("no logs captured")
	}
	if !strings.Contains(h.st.dump(), "CANARY") {
		t.Fatal("the store holds no secret: the sweep proves nothing")
	}
}

func TestClientMetadata(t *testing.T) {
	// The client ID metadata document: its client_id is its own URL, its
	// only redirect URI the callback, and it holds no secret.
	h := newHarness(t, nil)
	var md map[string]any
	if err := json.Unmarshal(h.m.ClientMetadata(), &md); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"client_id": publicURL + ClientMetadataPath, "client_name": "mcpgate",
		"redirect_uris": []any{publicURL + CallbackPath}, "grant_types": []any{"authorization_code", "refresh_token"},
		"response_types": []any{"code"}, "token_endpoint_auth_method": "none", "application_type": "web",
	}
	if fmt.Sprint(md) != fmt.Sprint(want) {
		t.Fatalf("metadata = %v\nwant %v", md, want)
	}
}

func TestErrorsForCallers(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if _, err := h.m.Start(ctx, "nope", "alice", ""); !errors.Is(err, ErrUnknownConnector) {
		t.Errorf("Start unknown: %v", err)
	}
	if _, err := h.m.Token(ctx, TokenRequest{Connector: "nope"}); !errors.Is(err, ErrUnknownConnector) {
		t.Errorf("Token unknown: %v", err)
	}
	if _, err := h.m.Start(ctx, "notion", "", ""); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("Start without identity: %v", err)
	}
	_, err := h.token("notion", "alice")
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Connector != "notion" || ce.Status != "needs_auth" || ce.Reason == "" {
		t.Errorf("Token before consent: %#v", err)
	}
	if c := h.m.Connection(ctx, "nope", "alice"); c.State != "" || c.Status() != "needs_auth" {
		t.Errorf("unknown connection = %+v", c)
	}
}

// sample holds a secret and gets its redaction from the helper alone: a
// tag on the secret field, a method-free twin and two one-line methods.
type sample struct {
	Name   string
	Secret string `json:"secret" secret:"true"`
}

type sampleView sample

func (s sample) Format(f fmt.State, verb rune) { formatRedacted(f, verb, sampleView(s)) }
func (s sample) MarshalJSON() ([]byte, error)  { return marshalRedacted(sampleView(s)) }

// sampleNested holds its secret in a struct field, as Config holds its
// client secret in the connector config it embeds.
type sampleNested struct {
	Name  string
	Inner struct {
		Secret string `secret:"true"`
		Public string
	}
}

type sampleNestedView sampleNested

func (s sampleNested) Format(f fmt.State, verb rune) { formatRedacted(f, verb, sampleNestedView(s)) }
func (s sampleNested) MarshalJSON() ([]byte, error)  { return marshalRedacted(sampleNestedView(s)) }

func TestSecretFieldsRedactedByTheHelper(t *testing.T) {
	// Every type that holds a secret, with its secret fields named here,
	// not read from the tags, so that a lost tag fails. Every other
	// string field must still print, and a record's stored form must
	// still hold every secret.
	types := []struct {
		v       any // a pointer to a value of the type
		secrets []string
	}{
		{&sample{}, []string{"Secret"}},
		{&sampleNested{}, []string{"Secret"}},
		{&Config{}, []string{"ClientSecret"}},
		{&clientRecord{}, []string{"ClientSecret"}},
		{&flowRecord{}, []string{"Verifier"}},
		{&grantRecord{}, []string{"AccessToken", "RefreshToken", "DPoPKey"}},
		{&revocationRecord{}, []string{"AccessToken", "RefreshToken"}},
		{&registration{}, []string{"ClientSecret"}},
		{&client{}, []string{"Secret"}},
		{&tokenResponse{}, []string{"AccessToken", "RefreshToken"}},
		{&Token{}, []string{"Header"}},
	}
	for _, tt := range types {
		v := reflect.ValueOf(tt.v).Elem()
		fields := map[string]reflect.Value{}
		fillStrings(v, fields)
		shown := slices.Collect(maps.Keys(fields))
		value := v.Interface()
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			checkRedacted(t, fmt.Sprintf("%s of %T", verb, value), fmt.Sprintf(verb, value), tt.secrets, shown, verb == "%x")
		}
		b, err := json.Marshal(value)
		if err != nil {
			t.Fatalf("marshalling %T: %v", value, err)
		}
		checkRedacted(t, fmt.Sprintf("json of %T", value), string(b), tt.secrets, shown, false)
		// The value itself keeps its secrets, and so does what is stored.
		for _, name := range tt.secrets {
			if got := fields[name].String(); got != canary(name) {
				t.Errorf("%T.%s = %q after printing", value, name, got)
			}
		}
		if stored, ok := storedForm(t, tt.v); ok {
			for _, name := range tt.secrets {
				if !strings.Contains(string(stored), canary(name)) {
					t.Errorf("the stored %T lost %s: %s", value, name, stored)
				}
			}
		}
	}
}

// canary is the value fillStrings gives field name.
func canary(name string) string { return "CANARY-" + name }

// fillStrings sets every exported string field of the struct v, and of
// the structs in it, to its canary, and adds it to fields by name.
func fillStrings(v reflect.Value, fields map[string]reflect.Value) {
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case !f.CanSet():
		case f.Kind() == reflect.String:
			f.SetString(canary(name))
			fields[name] = f
		case f.Kind() == reflect.Struct:
			fillStrings(f, fields)
		}
	}
}

// checkRedacted checks that out shows no secret field's canary but every
// other field's (unless hexed, when it only checks the secrets' hex).
func checkRedacted(t *testing.T, where, out string, secrets, fields []string, hexed bool) {
	t.Helper()
	for _, name := range fields {
		secret := slices.Contains(secrets, name)
		switch {
		case hexed && secret && strings.Contains(out, hex.EncodeToString([]byte(canary(name)))):
			t.Errorf("%s shows %s: %s", where, name, out)
		case hexed:
		case secret && strings.Contains(out, canary(name)):
			t.Errorf("%s shows %s: %s", where, name, out)
		case !secret && !strings.Contains(out, canary(name)):
			t.Errorf("%s hides %s, which is no secret: %s", where, name, out)
		}
	}
	if !hexed && !strings.Contains(out, redacted) {
		t.Errorf("%s shows no REDACTED: %s", where, out)
	}
}

// storedForm is what the store gets for a record: the bytes jsonWrite
// makes of its wire twin. ok is false for a type that is never stored.
func storedForm(t *testing.T, v any) (stored []byte, ok bool) {
	t.Helper()
	var wire any
	switch r := v.(type) {
	case *clientRecord:
		wire = (*clientWire)(r)
	case *flowRecord:
		wire = (*flowWire)(r)
	case *grantRecord:
		wire = (*grantWire)(r)
	case *revocationRecord:
		wire = (*revocationWire)(r)
	default:
		return nil, false
	}
	w, err := jsonWrite("k", wire, 0)
	if err != nil {
		t.Fatalf("storing %T: %v", v, err)
	}
	return w.Value, true
}

func TestRedactFailsClosed(t *testing.T) {
	// A value the helper cannot mask field by field prints as REDACTED
	// whole, rather than showing the secret or calling back into itself.
	type pin struct {
		Name string
		PIN  int `secret:"true"`
	}
	type unexported struct {
		Name string
		key  string `secret:"true"`
	}
	for name, r := range map[string]redactResult{
		"an int secret":           redactOutput(pin{Name: "n", PIN: 4242}),
		"an unexported secret":    redactOutput(unexported{Name: "n", key: "CANARY-key"}),
		"a type with Format":      redactOutput(Config{OAuthConfig: connectors.OAuthConfig{ClientSecret: "CANARY-cfg"}}),
		"a type with both":        redactOutput(sample{Secret: "CANARY-sample"}),
		"a type with MarshalJSON": redactOutput(selfMarshaling{Secret: "CANARY-self"}),
		"not a struct":            redactOutput("CANARY-string"),
	} {
		if r.printed != redacted || r.err != nil || string(r.json) != `"REDACTED"` {
			t.Errorf("%s prints %q and marshals to %s, %v; want REDACTED whole", name, r.printed, r.json, r.err)
		}
	}
}

// selfMarshaling mistakes itself for its twin.
type selfMarshaling struct {
	Secret string `secret:"true"`
}

func (s selfMarshaling) MarshalJSON() ([]byte, error) { return marshalRedacted(s) }

// redactResult is what the helpers make of one value.
type redactResult struct {
	printed string
	json    []byte
	err     error
}

// redactOutput prints and marshals w through the helpers, as a twin.
func redactOutput[W any](w W) redactResult {
	b, err := marshalRedacted(w)
	return redactResult{fmt.Sprintf("%+v", formatted[W]{w}), b, err}
}

// formatted prints w through formatRedacted.
type formatted[W any] struct{ w W }

func (f formatted[W]) Format(s fmt.State, verb rune) { formatRedacted(s, verb, f.w) }
