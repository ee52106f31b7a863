package connectors

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
)

// Update changes connector id by patch, a JSON merge patch (RFC 7396) of
// the connector as POST /mcpgate/connectors takes it: the members present
// change, an object merges into the one it replaces, and null clears a
// member (back to its default). "enabled": false disables the connector
// and true enables it again. The result is checked as Add checks a new
// connector, Check included.
//
// A config connector is read-only at run time but for enabled, which is
// kept as a record of its own beside the config (see Config.Disabled).
//
// prepare runs under the registry's lock with the connector as it is and
// as it will be, before anything is stored; its error stops the update.
// It must be quick and do no network I/O, since every change of the
// registry waits for it: what a change makes necessary, such as revoking
// the tokens it makes useless (TokenChanges), is done after Update
// returns, once the change is in force. An empty patch changes nothing,
// and stores nothing.
func (r *Registry) Update(ctx context.Context, id string, patch []byte, prepare func(old, next Entry) error) (Entry, error) {
	p, err := parsePatch(patch)
	if err != nil {
		return Entry{}, &Error{KindInvalid, err}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.opened(); err != nil {
		return Entry{}, err
	}
	old, ok := r.Snapshot().Entry(id)
	if !ok {
		return Entry{}, errorf(KindNotFound, "no connector %q", id)
	}
	next, err := r.patched(old, p, time.Now().UTC())
	if err != nil || p.empty() {
		return next, err
	}
	if err := prepare(old, next); err != nil {
		return Entry{}, err
	}
	return next, r.replace(ctx, old, next)
}

// connectorPatch is an update: a merge patch of the connector's config,
// and the switch, taken out of it, since "enabled" is no config member.
type connectorPatch struct {
	merge   map[string]any
	enabled *bool
}

// empty reports whether p changes nothing.
func (p connectorPatch) empty() bool { return len(p.merge) == 0 && p.enabled == nil }

// parsePatch reads a merge patch: a JSON object that every parser reads
// alike (strictjson), numbers kept as written.
func parsePatch(raw []byte) (connectorPatch, error) {
	if err := strictjson.Check(raw, nil); err != nil {
		return connectorPatch{}, fmt.Errorf("the patch is not valid JSON: %v", err)
	}
	var merge map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&merge); err != nil || merge == nil {
		return connectorPatch{}, errors.New("the patch must be a JSON object of the members to change")
	}
	p := connectorPatch{merge: merge}
	if v, ok := merge["enabled"]; ok {
		enabled, isBool := v.(bool)
		if !isBool {
			return connectorPatch{}, errors.New("enabled must be true or false")
		}
		if d, ok := merge["disabled"].(bool); ok && d == enabled {
			return connectorPatch{}, errors.New("enabled and disabled disagree: say enabled alone")
		}
		p.enabled = &enabled
		delete(merge, "enabled")
	}
	return p, nil
}

// patched returns old with p applied, checked. The caller holds r.mu.
func (r *Registry) patched(old Entry, p connectorPatch, now time.Time) (Entry, error) {
	if p.empty() {
		return old, nil
	}
	if !old.Runtime {
		if len(p.merge) > 0 {
			return Entry{}, errorf(KindConflict, "connector %q is defined in the config, which the admin API cannot change but for enabled: change it in the Caddyfile", old.Config.ID)
		}
		return r.switchConfig(old, *p.enabled, now)
	}
	cfg, err := mergeConfig(old, p)
	if err != nil {
		return Entry{}, &Error{KindInvalid, err}
	}
	if cfg.ID != old.Config.ID {
		return Entry{}, errorf(KindInvalid, "the id of connector %q cannot change: add a connector under the new id, then remove this one", old.Config.ID)
	}
	next := old
	next.Config, next.Title, next.Description, next.Updated = cfg, cfg.Title, cfg.Description, now
	next.Config.Title, next.Config.Description = "", "" // the entry's own, as Add stores them
	r.rematch(old, &next)
	c, err := next.Config.Build()
	if err == nil {
		err = r.check(next.Config, c)
	}
	if err != nil {
		return Entry{}, &Error{KindInvalid, err}
	}
	return next, nil
}

// mergeConfig applies p to the config of runtime entry e, its title and
// description in it as Add takes them, and reads the result as strictly as
// Add reads a new connector: an unknown member is an error. Placeholders
// are refused, as in Add.
func mergeConfig(e Entry, p connectorPatch) (Config, error) {
	doc := e.Config
	doc.Title, doc.Description = e.Title, e.Description
	current, err := asObject(doc)
	if err != nil {
		return Config{}, err
	}
	if p.enabled != nil {
		p.merge["disabled"] = !*p.enabled
	}
	merged, err := json.Marshal(mergePatch(current, p.merge))
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := strictjson.Unmarshal(merged, &cfg, true); err != nil {
		return Config{}, fmt.Errorf("the patched connector: %v", err)
	}
	return cfg.Expanded(Literal)
}

// asObject is v as a generic JSON object, numbers kept as written.
func asObject(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return out, dec.Decode(&out)
}

// mergePatch applies merge patch patch to target (RFC 7396 §2): an
// object merges member by member, null removes a member, and any other
// value replaces the target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// rematch names the preset that e's URL matches, if the URL changed from
// old's, and takes the preset's title and description where e has none. A
// preset's client is taken only when a connector is added: an update never
// swaps the client behind its tokens.
func (r *Registry) rematch(old Entry, e *Entry) {
	if !SameServer(old.Config.URL, e.Config.URL) {
		p, ok := r.matchPreset(e.Config.URL)
		e.Preset = ""
		if ok && e.Config.URL != "" {
			e.Preset = p.ID
		}
	}
	for _, p := range r.presets {
		if p.ID == e.Preset {
			e.Title, e.Description = cmp.Or(e.Title, p.Title), cmp.Or(e.Description, p.Description)
		}
	}
}

// replace stores next in place of old and puts it in force. A refusal by
// the watcher puts old back in storage. The caller holds r.mu.
func (r *Registry) replace(ctx context.Context, old, next Entry) error {
	id := next.Config.ID
	store := func(e Entry) error { return r.put(ctx, runtimePrefix+id, e) }
	if !next.Runtime {
		store = func(e Entry) error { return r.storeSwitch(ctx, e) }
	}
	if err := store(next); err != nil {
		return errorf(KindStorage, "storing connector %s: %v", id, err)
	}
	snap := r.change(true)
	snap.Entries[slices.IndexFunc(snap.Entries, func(e Entry) bool { return e.Config.ID == id })] = next
	if err := r.publish(snap); err != nil {
		_ = store(old) // best effort: the refusal is the error to report
		return &Error{KindInvalid, err}
	}
	r.tell(ctx)
	return nil
}

// TokenChanges says what of a connector's OAuth settings changed from old
// to next that the tokens its users hold depend on, in words for people:
// what they are bound to (tokenFacts), or the configured issuer, set,
// changed or cleared (the caller compares a new one with the issuer the
// grants recorded), or OAuth itself. An empty list means the tokens stay
// good. Where tokens are sent counts apart from the resource: with an
// explicit resource, a url or api on another origin would otherwise
// receive the tokens of the old one.
func TokenChanges(old, next Config) []string {
	o, n := old.OAuth(), next.OAuth()
	switch {
	case o == nil:
		return nil // no tokens to keep
	case n == nil:
		return []string{"the connector no longer uses OAuth"}
	}
	var out []string
	was, is := tokenFacts(old.URL, old.API, o), tokenFacts(next.URL, next.API, n)
	for i, f := range is {
		// A new resource says enough: the origins that moved with it
		// are not listed again.
		if f.value != was[i].value && !(f.where && slices.Contains(out, resourceChange)) {
			out = append(out, f.what)
		}
	}
	if o.Issuer != n.Issuer {
		out = append(out, IssuerChange)
	}
	return out
}

// IssuerChange and ClientChange are TokenChanges' words for a changed
// issuer and a changed client.
const (
	IssuerChange = "the issuer"
	ClientChange = "the OAuth client"
)

// resourceChange is TokenChanges' word for a changed resource.
const resourceChange = "the resource"

// tokenFact is one setting that a connector's tokens are bound to: what
// it is, in words for people, and its value.
type tokenFact struct {
	what, value string
	where       bool // where tokens are sent, rather than what they are for
}

// tokenFacts are the settings that the OAuth tokens of a connector at
// mcpURL and api, with OAuth settings o, are bound to: the resource they
// were issued for (RFC 8707) and the audience; the origins they are sent
// to; the consent mode (whose they are); and the client they were issued
// to (its id, how it registers, or the client_name it registered with).
// The issuer is not one of them, as an issuer configured to the one the
// grants came from keeps them (see TokenChanges).
func tokenFacts(mcpURL, api string, o *OAuthConfig) []tokenFact {
	return []tokenFact{
		{what: resourceChange, value: cmp.Or(o.Resource, mcpURL, api)},
		{what: "the MCP server's origin", value: originOf(mcpURL), where: true},
		{what: "the API's origin", value: originOf(api), where: true},
		{what: "the audience", value: o.Audience},
		{what: "the consent mode", value: consentOf(o)},
		{what: ClientChange, value: clientOf(o)},
	}
}

// TokenBinding is a digest of what the OAuth tokens of connector c, with
// OAuth settings o, are bound to (tokenFacts). A grant records the
// binding it was obtained under, and the OAuth manager uses no grant
// obtained under another: an update that changes any of them refuses the
// old tokens from the moment it is in force, on every instance, before
// they are revoked.
func TokenBinding(c *Connector, o OAuthConfig) string {
	h := sha256.New()
	for _, f := range tokenFacts(urlString(c.URL), urlString(c.API), &o) {
		h.Write([]byte(f.value))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// urlString is u as a string, "" for nil.
func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// originOf is the origin of URL raw (scheme, host and port), "" for none.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil {
		return raw
	}
	return origin(u)
}

// consentOf names whose tokens they are: the consent mode, and the
// client credentials grant when it gets them, since its tokens are the
// client's own and no one's consent. The default grant adds nothing, so
// that the binding of a connector configured before grants existed stays.
func consentOf(o *OAuthConfig) string {
	mode := string(cmp.Or(o.Consent, PerUser))
	if o.Grant != "" && o.Grant != "authorization_code" {
		mode += " " + o.Grant
	}
	return mode
}

// clientOf names the client a connector's tokens are issued to: a static
// client by its id alone (a new secret for it keeps them), a registered
// one by how it registers and the name it registers with.
func clientOf(o *OAuthConfig) string {
	if o.ClientID != "" {
		return "static " + o.ClientID
	}
	return strings.Join([]string{cmp.Or(o.Registration, "auto"), o.ClientName}, " ")
}
