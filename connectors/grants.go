package connectors

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// grantPrefix is where the grants added at run time live in the
// Registry's Storage, sealed like its other records.
const grantPrefix = "runtime/grants/"

// maxGrantAttempts bounds how many ids AddGrant tries: with 64 random
// bits a second is already rare, so running out means the store refuses
// every create, not bad luck.
const maxGrantAttempts = 8

// maxReason bounds a runtime grant's reason: a sentence or two for the
// audit log, not a document.
const maxReason = 1000

// Grant is one grant of the registry: one of the config's, or one an
// admin added at run time with a reason. Either is a grants.Rule; the
// other fields say where it came from.
type Grant struct {
	grants.Rule
	// ID names a runtime grant: "g-" and 13 lowercase base32 characters
	// (64 random bits). A config grant has none; its Index names it.
	ID string `json:"id,omitempty"`
	// Reason says why an admin added it. Required for a runtime grant.
	Reason string `json:"reason,omitempty"`
	// Created is when it was added, and By who added it (the admin
	// request's address); both zero for a config grant.
	Created time.Time `json:"created,omitzero"`
	By      string    `json:"by,omitempty"`
	// Index is a config grant's 1-based position in the config; 0 for a
	// runtime one.
	Index int `json:"-"`
	// Runtime tells a grant added at run time from the config's.
	Runtime bool `json:"-"`
}

// Name is how people and the admin API name g: its id, or a config
// grant's index.
func (g Grant) Name() string {
	if g.Runtime {
		return g.ID
	}
	return strconv.Itoa(g.Index)
}

// GrantRequest is a grant to add at run time: the fields of a config
// grant and the reason for it.
type GrantRequest struct {
	grants.Rule
	// Reason says why; required, since the audit log keeps it as the
	// record of why someone was let in.
	Reason string `json:"reason"`
	// By is who asks, as the admin API knows them; it never comes from
	// the request's body.
	By string `json:"-"`
}

// Grant returns the grant that id names: a runtime grant's id, or a
// config grant's index.
func (s *Snapshot) Grant(id string) (Grant, bool) {
	for _, g := range s.Grants {
		if g.Name() == id {
			return g, true
		}
	}
	return Grant{}, false
}

// configGrants makes the registry's grants of the config's rules.
func configGrants(rules []grants.Rule) []Grant {
	out := make([]Grant, len(rules))
	for i, r := range rules {
		out[i] = Grant{Rule: r, Index: i + 1}
	}
	return out
}

// AddGrant checks a grant as the config's are checked, keeps it with its
// reason, and announces it: the gateway rebuilt on the announcement
// applies it from the next request on.
func (r *Registry) AddGrant(ctx context.Context, req GrantRequest) (Grant, error) {
	if err := checkReason(req.Reason); err != nil {
		return Grant{}, &Error{KindInvalid, err}
	}
	if err := req.Rule.Validate(); err != nil {
		return Grant{}, &Error{KindInvalid, err}
	}
	g := Grant{Rule: req.Rule, Reason: strings.TrimSpace(req.Reason), Created: time.Now().UTC(), By: req.By, Runtime: true}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.opened(); err != nil {
		return Grant{}, err
	}
	if err := r.createGrant(ctx, &g); err != nil {
		return Grant{}, err
	}
	next := r.change(true)
	next.Grants = append(next.Grants, g)
	if err := r.publish(next); err != nil {
		_ = r.remove(ctx, grantPrefix+g.ID)
		return Grant{}, &Error{KindInvalid, err}
	}
	r.tell(ctx)
	return g, nil
}

// RemoveGrant forgets runtime grant id and announces it. A config
// grant's index is a conflict: the config is changed where it is kept.
func (r *Registry) RemoveGrant(ctx context.Context, id string) (Grant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.opened(); err != nil {
		return Grant{}, err
	}
	g, ok := r.Snapshot().Grant(id)
	switch {
	case !ok:
		return Grant{}, errorf(KindNotFound, "no grant %q", id)
	case !g.Runtime:
		return Grant{}, errorf(KindConflict, "grant %s is defined in the config, which the admin API cannot change: change it in the Caddyfile", id)
	}
	key := grantPrefix + id
	if err := r.remove(ctx, key); err != nil {
		return Grant{}, errorf(KindStorage, "removing grant %s: %v", id, err)
	}
	next := r.change(true)
	next.Grants = slices.DeleteFunc(next.Grants, func(x Grant) bool { return x.Runtime && x.ID == id })
	if err := r.publish(next); err != nil {
		_ = r.put(ctx, key, g) // what is stored is what the next Open applies
		return Grant{}, err
	}
	r.tell(ctx)
	return g, nil
}

// readGrants reads the runtime grants from storage, oldest first, so that
// they keep their places after the config's as they are added.
func readGrants(ctx context.Context, s Storage) ([]Grant, error) {
	stored, err := readAll[Grant](ctx, s, grantPrefix, "runtime grant")
	if err != nil {
		return nil, err
	}
	out := make([]Grant, 0, len(stored))
	for id, g := range stored {
		g.ID, g.Runtime = id, true // the key names it, whatever the record says
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Grant) int { return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID)) })
	return out, nil
}

// createGrant stores g under a new id, which it sets. The write is
// create-only, so that an instance sharing the store that picked the same
// id at once (and whose grant this one's snapshot does not show yet)
// keeps its grant: the loser picks another id. The caller holds r.mu.
func (r *Registry) createGrant(ctx context.Context, g *Grant) error {
	for range maxGrantAttempts {
		g.ID = r.grantID()
		if _, taken := r.Snapshot().Grant(g.ID); taken {
			continue
		}
		raw, err := json.Marshal(g)
		if err != nil {
			return errorf(KindStorage, "storing grant %s: %v", g.ID, err)
		}
		created, err := create(ctx, r.storage, grantPrefix+g.ID, raw)
		if err != nil {
			return errorf(KindStorage, "storing grant %s: %v", g.ID, err)
		}
		if created {
			return nil
		}
	}
	return errorf(KindStorage, "storing a grant: each of %d new ids was taken in the store", maxGrantAttempts)
}

// create stores value under key only if the key holds nothing, and
// reports whether it did. On a store with versions the check and the
// write are one step (a create-only PutIfVersion), so two instances
// cannot both create the key; on one without, they are two, which is
// enough for a store that no other instance shares.
func create(ctx context.Context, s Storage, key string, value []byte) (bool, error) {
	if vs, ok := s.(store.Versioned); ok {
		return vs.PutIfVersion(ctx, key, value, 0, 0)
	}
	switch _, err := s.Get(ctx, key); {
	case err == nil:
		return false, nil
	case !errors.Is(err, store.ErrNotFound):
		return false, err
	}
	return true, s.Put(ctx, key, value, 0)
}

// grantIDEncoding writes grant ids: lowercase base32 without padding,
// short enough to type and read out, with no character that a shell or
// URL path needs escaped.
var grantIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomGrantID names a new runtime grant with 64 random bits: enough
// that two instances adding grants at once almost never pick the same
// one, and the create-only write catches it when they do.
func randomGrantID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return "g-" + grantIDEncoding.EncodeToString(b[:])
}

// checkReason checks a runtime grant's reason: present, and plain text
// that cannot forge or hide a line of the audit log it goes into.
func checkReason(reason string) error {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return fmt.Errorf(`a runtime grant needs a reason: say why with "reason" (the CLI's --reason)`)
	case len(reason) > maxReason:
		return fmt.Errorf("the reason is longer than %d bytes", maxReason)
	case strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return fmt.Errorf("the reason contains a control character")
	}
	return nil
}
