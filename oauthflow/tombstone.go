package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// A revocation that fails because the authorization server cannot be
// reached or answers 429 or 5xx is not forgotten: the tokens left wait in
// a tombstone (a revocationRecord), sealed by the store, until a retry
// revokes them or the server refuses them for good (RFC 7009 §2.2.1). A
// tombstone never outlives revocationTTL: a token the server still honours
// after a day is better left to expire than retried forever.

// Timings of revocation retries.
const (
	// revocationTTL is how long a tombstone lives after the first failure.
	revocationTTL = 24 * time.Hour
	// minRevokeBackoff is the wait after a first failure without
	// Retry-After; it doubles with each attempt, up to maxRevokeBackoff.
	// It also leases a claimed tombstone, so it must outlast an attempt
	// (revokeTimeout).
	minRevokeBackoff = time.Minute
	maxRevokeBackoff = time.Hour
)

// RetryRevocations retries, once each, the revocations left by
// Disconnect that are due now, and returns how many it retried. A
// tombstone is deleted once its tokens are revoked or refused for good,
// else its next attempt is set by the server's Retry-After, or by an
// exponential backoff from a minute up to an hour. Tombstones of
// connectors this Manager does not run are left alone: they expire, or
// another Manager on the store retries them.
//
// It is safe to call concurrently with every other method, and from
// several Managers sharing a store: each tombstone is claimed with
// Store.Take, so each of its tokens is sent at most once per due attempt.
// Callers should run it periodically (the mcpgate app does, every
// minute); the error joins the store failures met, while the servers'
// answers are logged.
func (m *Manager) RetryRevocations(ctx context.Context) (retried int, err error) {
	keys, err := m.store.List(ctx, prefixRevocations)
	if err != nil {
		return 0, fmt.Errorf("listing revocations to retry: %w", err)
	}
	var errs []error
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		sent, err := m.retryRevocation(ctx, key)
		if sent {
			retried++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return retried, errors.Join(errs...)
}

// retryRevocation retries the tombstone under key if it is due, and
// reports whether it sent anything.
func (m *Manager) retryRevocation(ctx context.Context, key string) (bool, error) {
	t, c, err := m.dueRevocation(ctx, key)
	if t == nil || err != nil {
		return false, err
	}
	// Once claimed, the tombstone is written back even if ctx ends.
	wctx := context.WithoutCancel(ctx)
	key, claimErr := m.claim(wctx, key, t)
	if key == "" {
		return false, claimErr
	}
	cl, err := m.recordedClient(ctx, c, t.Issuer, t.ClientKind, t.ClientID)
	switch {
	case errors.Is(err, errClientGone):
		// Nothing can authenticate as the client the tokens belong to.
		m.logRetry(t, OutcomeAbandoned, err.Error())
		return false, errors.Join(claimErr, m.deleteRevocation(wctx, key))
	case err != nil:
		// The claim's lease stands: the next attempt is a backoff away.
		return false, errors.Join(claimErr, err)
	}
	revoked, detail := m.attempt(ctx, c, cl, t)
	return true, errors.Join(claimErr, m.settle(wctx, key, t, revoked, detail))
}

// dueRevocation reads the tombstone under key and returns it with its
// connector if it is due now, or nil.
func (m *Manager) dueRevocation(ctx context.Context, key string) (*revocationRecord, *connector, error) {
	var t revocationRecord
	err := getJSON(ctx, m.store, key, (*revocationWire)(&t))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil // another caller claimed it
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading a revocation to retry: %w", err)
	}
	now := m.now()
	if !now.Before(t.Created.Add(revocationTTL)) {
		// The store expires it by its own clock; this Manager's may be ahead.
		m.logRetry(&t, OutcomeExpired, "")
		return nil, nil, m.deleteRevocation(ctx, key)
	}
	c := m.conns[t.Connector]
	if c == nil || now.Before(t.Next) {
		return nil, nil, nil
	}
	return &t, c, nil
}

// claim takes the tombstone under key, so that of several callers (of
// this Manager or of another on the store) exactly one retries it, and
// puts it back under a fresh key, with the attempt counted and a lease: a
// next attempt a full backoff away. The lease outlasts the attempt, so no
// one else claims the tombstone meanwhile, and if the process dies during
// the attempt, the tombstone is retried when the lease ends. As a claimed
// tombstone always moves, a caller that read the old key before the claim
// finds nothing to Take. claim returns the new key, or "" if another
// caller claimed the tombstone first; with a new key, the error is about
// storing the lease, and the attempt should go on.
func (m *Manager) claim(ctx context.Context, key string, t *revocationRecord) (string, error) {
	b, err := m.store.Take(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("claiming a revocation to retry: %w", err)
	}
	// What was taken is the authority, not what was read before.
	if err := decodeJSON(b, (*revocationWire)(t)); err != nil {
		return "", fmt.Errorf("claiming a revocation to retry: %w", err)
	}
	t.Attempts++
	t.Next = m.now().Add(backoff(t.Attempts))
	key = revocationKey()
	return key, m.putRevocation(ctx, key, t)
}

// settle records the outcome of an attempt on the tombstone under key: it
// is deleted if no token is left to retry, else stored with its next
// attempt.
func (m *Manager) settle(ctx context.Context, key string, t *revocationRecord, revoked bool, detail string) error {
	switch {
	case t.pending():
		m.logRetry(t, OutcomeWillRetry, detail)
		return m.putRevocation(ctx, key, t)
	case revoked:
		m.logRetry(t, OutcomeRevoked, detail)
	default:
		m.logRetry(t, OutcomeFailed, detail)
	}
	return m.deleteRevocation(ctx, key)
}

// keep settles the tombstone of a disconnect's first attempt, stored
// under key ("" if it could not be): deleted if no token is left to
// retry, else stored with its next attempt. It reports whether a retry
// waits, and says what it did in words for Revocation.Detail ("" when
// nothing is worth saying).
func (m *Manager) keep(ctx context.Context, key string, t *revocationRecord) (bool, string) {
	if !t.pending() {
		if key == "" {
			return false, ""
		}
		if err := m.deleteRevocation(ctx, key); err != nil {
			// A retry finds the tokens revoked already: RFC 7009 §2.2
			// answers 200 for them.
			m.log.Warn("deleting a settled revocation", zap.String("connector", t.Connector), zap.Error(err))
		}
		return false, ""
	}
	stored := key != ""
	if !stored {
		key = revocationKey()
	}
	if err := m.putRevocation(ctx, key, t); err != nil {
		m.log.Error("storing a revocation to retry", zap.String("connector", t.Connector), zap.Error(err))
		if !stored {
			return false, "the retry could not be stored"
		}
		// The tombstone stored before the attempt stands, leased.
	}
	return true, "will retry"
}

// putRevocation stores t under key until revocationTTL after its
// creation; a tombstone already past it is deleted instead.
func (m *Manager) putRevocation(ctx context.Context, key string, t *revocationRecord) error {
	w, err := m.revocationWrite(key, t)
	if err == nil {
		err = writeAll(ctx, m.store, []store.Write{w})
	}
	if err != nil {
		return fmt.Errorf("storing a revocation to retry: %w", err)
	}
	return nil
}

// revocationWrite is the write that stores t under key until
// revocationTTL after its creation, or deletes key if t is past it.
func (m *Manager) revocationWrite(key string, t *revocationRecord) (store.Write, error) {
	ttl := t.Created.Add(revocationTTL).Sub(m.now())
	if ttl <= 0 {
		return store.Write{Key: key, Delete: true}, nil
	}
	return jsonWrite(key, (*revocationWire)(t), ttl)
}

func (m *Manager) deleteRevocation(ctx context.Context, key string) error {
	if err := m.store.Delete(ctx, key); err != nil {
		return fmt.Errorf("deleting a revocation: %w", err)
	}
	return nil
}

// logRetry logs what became of a tombstone. The detail is the servers'
// answers, with the tokens and the client secret scrubbed (revokeOne).
// outcome is one of the Outcome constants, in the log and the event alike.
func (m *Manager) logRetry(t *revocationRecord, outcome, detail string) {
	level := zap.WarnLevel
	if outcome == OutcomeRevoked {
		level = zap.InfoLevel
	}
	fields := []zap.Field{zap.String("connector", t.Connector), zap.String("issuer", t.Issuer),
		zap.Int("attempt", t.Attempts), zap.String("outcome", outcome)}
	if detail != "" {
		fields = append(fields, zap.String("detail", detail))
	}
	if outcome == OutcomeWillRetry {
		fields = append(fields, zap.Time("next_attempt", t.Next))
	}
	m.log.Log(level, "revocation retry", fields...)
	m.emit(Event{Kind: EventRevocation, Connector: t.Connector, Outcome: outcome, Detail: detail})
}

// pending reports whether t still holds a token to revoke.
func (t *revocationRecord) pending() bool { return t.RefreshToken != "" || t.AccessToken != "" }

// retryDelay is how long to wait before retrying after failure, the
// attempts-th: what the server's Retry-After asks, else the backoff.
func (m *Manager) retryDelay(failure *transient, attempts int) time.Duration {
	if d, ok := retryAfter(failure.retryAfter, m.now()); ok {
		return d
	}
	return backoff(attempts)
}

// backoff is the wait after the attempts-th failed attempt: a minute,
// doubling with each attempt, up to an hour.
func backoff(attempts int) time.Duration {
	d := minRevokeBackoff
	for i := 1; i < attempts && d < maxRevokeBackoff; i++ {
		d *= 2
	}
	return min(d, maxRevokeBackoff)
}

// retryAfter reads a Retry-After header value (RFC 9110 §10.2.3):
// delay-seconds or an HTTP-date, cut to revocationTTL, beyond which the
// tombstone is gone anyway. A date in the past means now.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > uint64(revocationTTL/time.Second) {
			return revocationTTL, true
		}
		return time.Duration(n) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(at.Sub(now), 0), revocationTTL), true
}
