package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// A connector that the config no longer defines, and no runtime connector
// took the id of, leaves its grants and clients in the store: an orphan.
// A config reload in one process purges what it removed through the
// previous config's client (Manager.Remove); an orphan is what no running
// config knew any more, such as a connector removed from the config while
// the gateway was down. Its tokens are still live at the provider, so
// they are revoked (RFC 7009) where the client they were issued to can
// still authenticate, then every record goes.
//
// On a store several instances share, an instance that starts on a new
// config cannot tell a connector removed from one that instances on the
// older config still serve (a rolling deploy). So an orphan is first
// marked, and purged only once it has stayed an orphan for a grace
// period: every instance checks now and then (PurgeOrphans), and one that
// serves the connector drops the mark.

// prefixOrphans holds the marks of orphans seen, by connector id.
const prefixOrphans = "oauth/orphans/"

// errOrphan refuses discovery for an orphan: its config is gone, and
// revocation goes to the endpoint each grant recorded.
var errOrphan = errors.New("the connector is no longer configured")

// Orphans returns, in id order, the connectors that hold grants or
// registered clients in st although served does not name them.
func Orphans(ctx context.Context, st store.Store, served func(id string) bool) ([]string, error) {
	var ids []string
	for _, prefix := range []string{prefixGrants, prefixClients} {
		keys, err := st.List(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("listing the OAuth records: %w", err)
		}
		for _, key := range keys {
			id, _, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
			if id != "" && !served(id) && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// PurgeOptions say how PurgeOrphans purges.
type PurgeOptions struct {
	// Grace is how long a connector must stay an orphan before it is
	// purged: zero purges at once, for a store no other instance shares.
	Grace time.Duration
	// Reason is the disconnect reason each grant records, and its event
	// carries. Default "removed from the config".
	Reason string
	// HTTP reaches the authorization servers; nil means the egress guard
	// with no exception: the config that trusted a private or loopback
	// server is gone with the connector.
	HTTP *http.Client
}

// Purged is what PurgeOrphans did to one orphan.
type Purged struct {
	// Connector is the orphan's id.
	Connector string
	// Revocations are the revocations of its grants, one each.
	Revocations []Revocation
}

// PurgeOrphans purges the orphans of the store of opts (see Orphans) that
// have been orphans for o.Grace, and marks those seen for the first time.
// Each is purged as Manager.Remove purges a connector, by a Manager that
// knows of it only what its records say: its grants are disconnected,
// their tokens revoked where the recorded client can authenticate (a
// registered client whose record is kept, or the client ID metadata
// document, a public client), and its grants and clients deleted. A
// static client's secret lived in the config that is gone: its tokens are
// deleted unrevoked, and its Revocation says why. opts.OnEvent hears of
// every disconnect and revocation, for the audit log. The error joins the
// failures met; the orphans it did not purge are tried again next time.
func PurgeOrphans(ctx context.Context, opts Options, served func(id string) bool, o PurgeOptions) ([]Purged, error) {
	ids, err := Orphans(ctx, opts.Store, served)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	errs := []error{dropMarks(ctx, opts.Store, ids)}
	var out []Purged
	for _, id := range ids {
		due, err := dueOrphan(ctx, opts.Store, id, o.Grace, now())
		if !due || err != nil {
			errs = append(errs, err)
			continue
		}
		revs, err := purgeOrphan(ctx, opts, id, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("purging the records of %s, which no config defines: %w", id, err))
			continue
		}
		out = append(out, Purged{Connector: id, Revocations: revs})
	}
	return out, errors.Join(errs...)
}

// orphanMark is when a connector was first seen an orphan.
type orphanMark struct {
	Since time.Time `json:"since"`
}

// dueOrphan reports whether orphan id is due for purging: at once with no
// grace, else once marked for grace. An orphan seen the first time is
// marked. A mark lives twice the grace, so that one left by a purge that
// failed is not kept forever.
func dueOrphan(ctx context.Context, st store.Store, id string, grace time.Duration, now time.Time) (bool, error) {
	if grace <= 0 {
		return true, nil
	}
	var mark orphanMark
	err := getJSON(ctx, st, prefixOrphans+id, &mark)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, putJSON(ctx, st, prefixOrphans+id, &orphanMark{Since: now}, 2*grace)
	case err != nil:
		return false, fmt.Errorf("reading the orphan mark of %s: %w", id, err)
	}
	return now.Sub(mark.Since) >= grace, nil
}

// dropMarks deletes the marks of connectors that are not orphans now:
// served again, or purged.
func dropMarks(ctx context.Context, st store.Store, orphans []string) error {
	keys, err := st.List(ctx, prefixOrphans)
	if err != nil {
		return fmt.Errorf("listing the orphan marks: %w", err)
	}
	var errs []error
	for _, key := range keys {
		if !slices.Contains(orphans, strings.TrimPrefix(key, prefixOrphans)) {
			if err := st.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// purgeOrphan purges orphan id through a Manager of its own, and deletes
// its mark.
func purgeOrphan(ctx context.Context, opts Options, id string, o PurgeOptions) ([]Revocation, error) {
	cfg, err := orphanConfig(ctx, opts.Store, id, o.HTTP)
	if err != nil {
		return nil, err
	}
	m, err := New(opts, []Config{cfg})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	reason := o.Reason
	if reason == "" {
		reason = "removed from the config"
	}
	revs, err := m.Remove(ctx, id, reason)
	if err == nil {
		err = opts.Store.Delete(ctx, prefixOrphans+id)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
	}
	return revs, err
}

// orphanConfig is orphan id's client as its records tell it: the resource
// its grants recorded, shared consent if it holds the shared grant, and
// no way to discover anything (revocation goes to the endpoint each
// grant recorded). A connector that holds only clients gets a resource
// that names nothing, which only validation reads.
func orphanConfig(ctx context.Context, st store.Store, id string, hc *http.Client) (Config, error) {
	keys, err := st.List(ctx, prefixGrants+id+"/")
	if err != nil {
		return Config{}, fmt.Errorf("listing its grants: %w", err)
	}
	oc := connectors.OAuthConfig{Resource: "https://" + id + ".invalid/", Consent: PerUser}
	for _, key := range keys {
		if strings.HasSuffix(key, "/"+sharedSegment) {
			oc.Consent = Shared
		}
		var rec grantRecord
		if getJSON(ctx, st, key, (*grantWire)(&rec)) == nil && rec.Resource != "" {
			oc.Resource = rec.Resource
		}
	}
	if hc == nil {
		hc = egress.Client(egress.Policy{})
	}
	return Config{Connector: id, OAuthConfig: oc, HTTP: hc,
		Discover: func(context.Context, string, *discovery.Challenge) (*discovery.Result, error) { return nil, errOrphan }}, nil
}
