package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// What an agent may use changes when the gateway does, and when a
// consent is given or withdrawn. A new generation tells every agent
// listening (announce); a consent tells those of the user it concerns,
// or of everyone when it is shared, here through the mux serving now and
// on the other instances through the shared store (ConsentNews).

const (
	// accessChannel carries "<instance> <connector> <who>" for each
	// consent given or withdrawn: who is everyone, or the tag of one
	// user. Connector ids hold no space, and neither do tags.
	accessChannel = "mcpgate_access"
	// everyone stands for every caller in a notice: a shared consent.
	everyone = "*"
)

// announce tells the agents listening that g, which replaces old, may
// serve them otherwise: its connectors, grants or credentials may differ.
// Only a change of the registry's generation is news. A generation built
// before the registry opened (Generation 0) served no agent of its own:
// in a config reload, the agents hear of the new config when the old one
// goes, once it no longer serves anyone, which is the host's to tell
// (mcpmux.Streams.Changed).
func (g *Gateway) announce(old *Gateway) {
	if old.snap == nil || g.snap == nil || old.snap.Generation == 0 || old.snap.Generation == g.snap.Generation {
		return
	}
	g.mux.Reloaded()
}

// ConsentNews tells the agents listening, here and on the other instances
// that share a store, that a consent was given or withdrawn. Its
// OAuthEvent is (a part of) every OAuth manager's OnEvent; Follow hears
// the other instances, and Stop ends what Follow began.
type ConsentNews struct {
	// Live is the gateway serving here, whose mux tells the agents.
	Live *Live
	// Logger receives the failures to tell the other instances.
	Logger *zap.Logger

	// mu orders each notice's start before Stop's wait: a WaitGroup's
	// Add must not race with its Wait, so tell reads peers and calls Add
	// under the lock that Stop takes to clear them.
	mu      sync.Mutex
	peers   *consentPeers // set by Follow, cleared by Stop
	sending sync.WaitGroup
}

// consentPeers is how an instance reaches the others.
type consentPeers struct {
	store    store.Notifier
	key      []byte // keys the tags of users
	instance string // names this instance, so that it ignores its own notices
}

// OAuthEvent acts on an OAuth manager's event: a consent that completed,
// a grant disconnected, or a refresh the authorization server refused
// (the grant needs consent again) changes what its user may use, or
// everyone under shared consent.
func (a *ConsentNews) OAuthEvent(e oauthflow.Event) {
	if !changesAccess(e) {
		return
	}
	g := a.Live.Current()
	if g == nil {
		return
	}
	user := e.User
	if m := g.Manager(); m != nil {
		if consent, _ := m.Consent(e.Connector); consent == oauthflow.Shared {
			user = ""
		}
	}
	g.Mux().AccessChanged(e.Connector, func(caller string) bool { return user == "" || caller == user })
	a.tell(e.Connector, user)
}

// changesAccess reports whether e changes what someone may use.
func changesAccess(e oauthflow.Event) bool {
	switch e.Kind {
	case oauthflow.EventConsentFinish:
		return e.Outcome == oauthflow.OutcomeOK
	case oauthflow.EventDisconnect:
		// Even when the purge failed in the store: the grant in memory
		// is disconnected, and tokens are refused from now on.
		return true
	case oauthflow.EventRefresh:
		return e.Outcome == oauthflow.OutcomeInvalidGrant || e.Stopped
	}
	return false
}

// tell tells the other instances, if any, that user ("" for everyone)
// may use something else at connector. It runs on the goroutine of the
// manager's event, so the notice goes out on its own, which Stop waits
// for.
func (a *ConsentNews) tell(connector, user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.peers
	if p == nil {
		return
	}
	who := everyone
	if user != "" {
		who = p.tag(user)
	}
	a.sending.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tellTimeout)
		defer cancel()
		if err := p.store.Notify(ctx, accessChannel, p.instance+" "+connector+" "+who); err != nil {
			a.Logger.Warn("telling the other instances of a consent given or withdrawn", zap.String("connector", connector), zap.Error(err))
		}
	})
}

// Stop tells the other instances nothing more, and waits for the notices
// on their way: the store they go through may close once it returns. The
// agents here are still told, through the mux serving now.
func (a *ConsentNews) Stop() {
	a.mu.Lock()
	a.peers = nil
	a.mu.Unlock()
	a.sending.Wait()
}

// Follow has the mux serving here tell its agents of the consents that
// the other instances on st announce, until ctx ends. key keys the users'
// tags in the notices, and must be the same on every instance; instance
// names this one.
func (a *ConsentNews) Follow(ctx context.Context, st store.Notifier, key []byte, instance string) error {
	p := &consentPeers{store: st, key: key, instance: instance}
	a.mu.Lock()
	a.peers = p
	a.mu.Unlock()
	return st.Subscribe(ctx, accessChannel, func(payload string) {
		from, rest, _ := strings.Cut(payload, " ")
		connector, who, ok := strings.Cut(rest, " ")
		g := a.Live.Current()
		if !ok || from == instance || g == nil {
			return
		}
		g.Mux().AccessChanged(connector, func(caller string) bool { return who == everyone || p.tag(caller) == who })
	})
}

// tag names user in a notice without revealing them: a notice travels in
// the clear (PostgreSQL's NOTIFY), and a user id is often an email.
func (p *consentPeers) tag(user string) string { return userTag(p.key, user) }

// userTag names user under key without revealing them: an HMAC, so that
// no one without the key can tell whom a tag names by hashing guesses,
// nor make one; 128 bits of it tell users apart and keep it short.
func userTag(key []byte, user string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(user))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}
