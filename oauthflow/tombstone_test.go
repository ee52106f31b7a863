package oauthflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// tombstones reads every revocation tombstone in the store.
func (h *harness) tombstones() []revocationRecord {
	h.t.Helper()
	return storedTombstones(h.t, h.st)
}

// retry runs RetryRevocations, which must not fail, and returns how many
// it retried and how many revocation requests reached the server.
func (h *harness) retry() (retried, requests int) {
	h.t.Helper()
	before := len(h.as.revokeRequests())
	retried, err := h.m.RetryRevocations(context.Background())
	if err != nil {
		assertNoCanary(h.t, "RetryRevocations error", err.Error())
		h.t.Fatalf("RetryRevocations: %v", err)
	}
	return retried, len(h.as.revokeRequests()) - before
}

// retryLogs returns the fields of each "revocation retry" log entry.
func (h *harness) retryLogs() []map[string]any {
	var out []map[string]any
	for _, e := range h.logs.FilterMessage("revocation retry").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

// failRevoke answers revocations with status, a Retry-After of retry
// unless it is "", and an RFC 6749 error whose description echoes the
// token, which must not reach any error or log.
func failRevoke(status int, retry, code string) func(http.ResponseWriter, request) bool {
	return func(w http.ResponseWriter, r request) bool {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":%q,"error_description":"cannot revoke %s now"}`, code, r.form.Get("token"))
		return true
	}
}

// dropRevoke closes the connection without answering.
func dropRevoke(w http.ResponseWriter, _ request) bool {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
	return true
}

// checkRetried checks that reqs revoke g's refresh token, then its access
// token, each with its hint and the client's authentication.
func checkRetried(t *testing.T, reqs []request, g grantRecord) {
	t.Helper()
	if len(reqs) != 2 {
		t.Fatalf("%d revocation requests, want 2", len(reqs))
	}
	r0, r1 := reqs[0], reqs[1]
	if r0.form.Get("token") != g.RefreshToken || r0.form.Get("token_type_hint") != "refresh_token" ||
		r1.form.Get("token") != g.AccessToken || r1.form.Get("token_type_hint") != "access_token" ||
		!r0.hasBasic || r0.user != g.ClientID || !r1.hasBasic {
		t.Errorf("retried revocations: %v %v", r0.form, r1.form)
	}
}

func TestRevocationRetry(t *testing.T) {
	// A revocation that fails in a way worth retrying (a 503, an
	// unreachable server) is retried from a tombstone when due; a
	// definitive answer is not.
	start := newClock().Now()
	tests := []struct {
		name    string
		fail    func(http.ResponseWriter, request) bool
		timeout time.Duration // the connector's HTTP timeout, if set
		due     time.Duration // when the tombstone is due; 0: no tombstone
		detail  string
	}{
		{name: "c 503 Retry-After seconds", fail: failRevoke(503, "120", "temporarily_unavailable"), due: 120 * time.Second, detail: "HTTP 503 temporarily_unavailable"},
		{name: "c 503 Retry-After date", fail: failRevoke(503, start.Add(120*time.Second).Format(http.TimeFormat), "temporarily_unavailable"),
			due: 120 * time.Second, detail: "HTTP 503"},
		{name: "c 500 malformed Retry-After", fail: failRevoke(500, "soon", "server_error"), due: time.Minute, detail: "HTTP 500"},
		{name: "429 without Retry-After", fail: failRevoke(429, "", "slow_down"), due: time.Minute, detail: "HTTP 429"},
		{name: "e connection dropped", fail: dropRevoke, due: time.Minute, detail: "could not reach"},
		{name: "e timeout", fail: func(http.ResponseWriter, request) bool { time.Sleep(300 * time.Millisecond); return true },
			timeout: 50 * time.Millisecond, due: time.Minute, detail: "deadline exceeded"},
		{name: "definitive 400", fail: failRevoke(400, "", "unsupported_token_type"), detail: "HTTP 400 unsupported_token_type"},
		{name: "definitive 401", fail: failRevoke(401, "5", "invalid_client"), detail: "HTTP 401 invalid_client"},
		{name: "b 200 unknown token", fail: func(http.ResponseWriter, request) bool { return true }, detail: "access token revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
				if tt.timeout > 0 {
					(*cfgs)[0].HTTP = &http.Client{Transport: h.as.srv.Client().Transport, Timeout: tt.timeout}
				}
			})
			ctx := context.Background()
			h.connect(h.as, "notion", "alice")
			g := h.grant("notion", "alice")
			h.as.set(func(a *fakeAS) { a.onRevoke = tt.fail })

			rev, err := h.m.Disconnect(ctx, "notion", "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			assertNoCanary(t, "detail", rev.Detail)
			if !rev.Attempted || !strings.Contains(rev.Detail, tt.detail) || strings.Contains(rev.Detail, "will retry") != (tt.due > 0) || rev.Retrying != (tt.due > 0) {
				t.Errorf("revocation = %+v, want %q, will retry: %v", rev, tt.detail, tt.due > 0)
			}
			if n := len(h.as.revokeRequests()); n != 2 {
				t.Fatalf("%d revocation requests at the disconnect, want 2", n)
			}
			tombs := h.tombstones()
			if tt.due == 0 {
				if len(tombs) != 0 {
					t.Fatalf("tombstones after a definitive answer: %v", tombs)
				}
				if retried, reqs := h.retry(); retried != 0 || reqs != 0 {
					t.Errorf("RetryRevocations = %d, %d requests", retried, reqs)
				}
				assertNoCanary(t, "logs", h.logText())
				return
			}
			if len(tombs) != 1 {
				t.Fatalf("%d tombstones, want 1", len(tombs))
			}
			if tb := tombs[0]; tb.RefreshToken != g.RefreshToken || tb.AccessToken != g.AccessToken || tb.Attempts != 1 ||
				!tb.Next.Equal(start.Add(tt.due)) || tb.Endpoint != g.RevocationEndpoint || tb.ClientID != g.ClientID ||
				tb.Connector != "notion" || !tb.Created.Equal(start) {
				t.Errorf("tombstone = %+v, due %v", tb, tt.due)
			}

			h.as.set(func(a *fakeAS) { a.onRevoke = nil })
			h.clock.Add(tt.due - time.Second)
			if retried, reqs := h.retry(); retried != 0 || reqs != 0 {
				t.Fatalf("before due: RetryRevocations = %d, %d requests", retried, reqs)
			}
			h.clock.Add(time.Second)
			if retried, _ := h.retry(); retried != 1 {
				t.Fatalf("when due: RetryRevocations = %d, want 1", retried)
			}
			checkRetried(t, h.as.revokeRequests()[2:], g)
			if tombs := h.tombstones(); len(tombs) != 0 {
				t.Errorf("tombstones after the retry: %v", tombs)
			}
			if retried, reqs := h.retry(); retried != 0 || reqs != 0 {
				t.Errorf("after: RetryRevocations = %d, %d requests", retried, reqs)
			}
			logs := h.retryLogs()
			if len(logs) != 1 || logs[0]["connector"] != "notion" || logs[0]["attempt"] != int64(2) || logs[0]["outcome"] != "revoked" {
				t.Errorf("retry logs = %v", logs)
			}
			assertNoCanary(t, "logs", h.logText())
		})
	}
}

func TestRevocationBackoff(t *testing.T) {
	// The access token is revoked at the disconnect, the refresh token
	// never: the tombstone keeps the refresh token alone, retried after 1,
	// 2, 4… minutes up to an hour, the server's echo of it scrubbed.
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	g := h.grant("notion", "alice")
	h.as.set(func(a *fakeAS) {
		a.onRevoke = func(w http.ResponseWriter, r request) bool {
			if r.form.Get("token_type_hint") == "access_token" {
				return false
			}
			return failRevoke(503, "", "temporarily_unavailable")(w, r)
		}
	})
	rev, err := h.m.Disconnect(context.Background(), "notion", "alice", "")
	if err != nil || rev.Revoked || !strings.Contains(rev.Detail, "access token revoked") || !strings.HasSuffix(rev.Detail, "will retry") {
		t.Fatalf("Disconnect = %+v, %v", rev, err)
	}
	assertNoCanary(t, "detail", rev.Detail)
	for attempt, wait := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60} {
		wait *= time.Minute
		tombs := h.tombstones()
		if len(tombs) != 1 || tombs[0].Attempts != attempt+1 || tombs[0].AccessToken != "" || tombs[0].RefreshToken != g.RefreshToken ||
			!tombs[0].Next.Equal(h.clock.Now().Add(wait)) {
			t.Fatalf("after attempt %d: tombstones = %+v, want the refresh token due in %v", attempt+1, tombs, wait)
		}
		h.clock.Add(wait - time.Second)
		if retried, reqs := h.retry(); retried != 0 || reqs != 0 {
			t.Fatalf("attempt %d early: %d retried, %d requests", attempt+2, retried, reqs)
		}
		h.clock.Add(time.Second)
		if retried, reqs := h.retry(); retried != 1 || reqs != 1 {
			t.Fatalf("attempt %d: %d retried, %d requests", attempt+2, retried, reqs)
		}
		if last := h.as.revokeRequests(); last[len(last)-1].form.Get("token_type_hint") != "refresh_token" {
			t.Fatalf("attempt %d revoked %v", attempt+2, last[len(last)-1].form)
		}
	}
	for _, l := range h.retryLogs() {
		if l["outcome"] != OutcomeWillRetry || l["connector"] != "notion" || !strings.Contains(fmt.Sprint(l["detail"]), "HTTP 503") {
			t.Errorf("retry log = %v", l)
		}
	}
	if n := len(h.logs.FilterMessage("revocation retry").Filter(func(e observer.LoggedEntry) bool { return e.Level == zapcore.WarnLevel }).All()); n != 8 {
		t.Errorf("%d warnings of retries, want 8", n)
	}
	assertNoCanary(t, "logs", h.logText())
}

func TestRevocationTombstoneTTL(t *testing.T) {
	// A tombstone lives 24 hours from the first failure, however often it
	// is retried (each claim moves it to a new key with the TTL left).
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.as.set(func(a *fakeAS) { a.onRevoke = failRevoke(503, "", "temporarily_unavailable") })
	if _, err := h.m.Disconnect(context.Background(), "notion", "alice", ""); err != nil {
		t.Fatal(err)
	}
	for range 23 {
		h.clock.Add(time.Hour)
		if retried, reqs := h.retry(); retried != 1 || reqs != 2 {
			t.Fatalf("%d retried, %d requests", retried, reqs)
		}
	}
	h.clock.Add(time.Hour)
	if tombs := h.tombstones(); len(tombs) != 0 {
		t.Fatalf("tombstones after 24 h: %v", tombs)
	}
	if retried, reqs := h.retry(); retried != 0 || reqs != 0 {
		t.Errorf("after 24 h: %d retried, %d requests", retried, reqs)
	}
}

func TestRevocationTombstoneExpiredByManager(t *testing.T) {
	// A store whose clock lags the Manager's still holds an old
	// tombstone: the Manager drops it unsent.
	h := newHarness(t, nil)
	ctx := context.Background()
	old := revocationRecord{Connector: "notion", Issuer: h.as.Issuer, ClientKind: RegistrationDCR, ClientID: "c",
		Endpoint: h.as.Issuer + "/revoke", RefreshToken: "RT-CANARY-old", Attempts: 3, Created: h.clock.Now().Add(-25 * time.Hour)}
	if err := putJSON(ctx, h.st, revocationKey(), (*revocationWire)(&old), 0); err != nil {
		t.Fatal(err)
	}
	if retried, reqs := h.retry(); retried != 0 || reqs != 0 {
		t.Errorf("%d retried, %d requests", retried, reqs)
	}
	if tombs := h.tombstones(); len(tombs) != 0 {
		t.Errorf("tombstones = %v", tombs)
	}
	if logs := h.retryLogs(); len(logs) != 1 || logs[0]["outcome"] != "expired" {
		t.Errorf("retry logs = %v", logs)
	}
	assertNoCanary(t, "logs", h.logText())
}

func TestRevocationRetryWithoutClient(t *testing.T) {
	tests := []struct {
		name     string
		change   func(h *harness) *Manager // returns the Manager that retries
		wantLeft bool
		outcome  string
	}{
		{name: "connector not run here", wantLeft: true, change: func(h *harness) *Manager {
			// Another config, without the connector, on the same store.
			m, err := New(Options{Store: h.st, PublicURL: publicURL, StateKey: h.m.stateKey, Now: h.clock.Now},
				[]Config{h.as.config("linear")})
			if err != nil {
				h.t.Fatal(err)
			}
			h.t.Cleanup(m.Close)
			return m
		}},
		{name: "client gone", outcome: "abandoned", change: func(h *harness) *Manager {
			g := h.grant("notion", "alice")
			h.st.Delete(context.Background(), clientKey("notion", g.Issuer))
			return h.m
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.connect(h.as, "notion", "alice")
			h.as.set(func(a *fakeAS) { a.onRevoke = failRevoke(503, "", "temporarily_unavailable") })
			if _, err := h.m.Disconnect(context.Background(), "notion", "alice", ""); err != nil {
				t.Fatal(err)
			}
			h.as.set(func(a *fakeAS) { a.onRevoke = nil })
			m := tt.change(h)
			h.clock.Add(time.Hour)
			retried, err := m.RetryRevocations(context.Background())
			if retried != 0 || err != nil || len(h.as.revokeRequests()) != 2 {
				t.Errorf("RetryRevocations = %d, %v; %d requests", retried, err, len(h.as.revokeRequests()))
			}
			if left := len(h.tombstones()) == 1; left != tt.wantLeft {
				t.Errorf("tombstone left: %v, want %v", left, tt.wantLeft)
			}
			if logs := h.retryLogs(); tt.outcome != "" && (len(logs) != 1 || logs[0]["outcome"] != tt.outcome) {
				t.Errorf("retry logs = %v", logs)
			}
		})
	}
}

func TestRevocationRetryConcurrent(t *testing.T) {
	// Two RetryRevocations of one Manager and one of another Manager on
	// the same store, at once: each due token is revoked exactly once.
	var opts Options
	var cfgs []Config
	h := newHarness(t, func(_ *harness, o *Options, c *[]Config) { opts, cfgs = *o, *c })
	other, err := New(opts, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	ctx := context.Background()
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	for round := range 3 {
		want := map[string]int{}
		h.as.set(func(a *fakeAS) { a.onRevoke = failRevoke(503, "60", "temporarily_unavailable") })
		for _, u := range users {
			h.connect(h.as, "notion", u)
			g := h.grant("notion", u)
			want[g.RefreshToken], want[g.AccessToken] = 1, 1
			if rev, err := h.m.Disconnect(ctx, "notion", u, ""); err != nil || !strings.HasSuffix(rev.Detail, "will retry") {
				t.Fatalf("Disconnect = %+v, %v", rev, err)
			}
		}
		// A slow server and slow reads widen the window for a double claim.
		h.as.set(func(a *fakeAS) {
			a.onRevoke = func(http.ResponseWriter, request) bool { time.Sleep(5 * time.Millisecond); return false }
		})
		h.st.getDelay.Store(int64(time.Millisecond))
		before := len(h.as.revokeRequests())
		h.clock.Add(time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		gate := make(chan struct{})
		for _, m := range []*Manager{h.m, h.m, other} {
			wg.Go(func() {
				<-gate
				n, err := m.RetryRevocations(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		close(gate)
		wg.Wait()
		h.st.getDelay.Store(0)
		got := map[string]int{}
		for _, r := range h.as.revokeRequests()[before:] {
			got[r.form.Get("token")]++
		}
		if total != len(users) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d: %d retried, want %d; requests per token %v", round, total, len(users), got)
		}
		if tombs := h.tombstones(); len(tombs) != 0 {
			t.Errorf("round %d: tombstones left: %v", round, tombs)
		}
	}
	assertNoCanary(t, "logs", h.logText())
}

func TestRetryAfter(t *testing.T) {
	now := newClock().Now()
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"120", 120 * time.Second, true},
		{" 0 ", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Sunday, 01-Mar-26 12:05:00 GMT", 5 * time.Minute, true}, // RFC 850
		{"999999999999999999999999", revocationTTL, true},
		{"100000", revocationTTL, true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.value, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
	for attempts, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 6: 32 * time.Minute, 7: time.Hour, 1000: time.Hour} {
		if got := backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}

// dyingStore is a store of a process that can die: once dead, it neither
// reads nor writes, as a process killed mid-request would not.
type dyingStore struct {
	store.Store
	dead    atomic.Bool
	batches atomic.Pointer[[][]string] // the keys of each batch, in order
}

var errDead = errors.New("the process is gone")

func (s *dyingStore) Get(ctx context.Context, key string) ([]byte, error) {
	if s.dead.Load() {
		return nil, errDead
	}
	return s.Store.Get(ctx, key)
}

func (s *dyingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.dead.Load() {
		return errDead
	}
	return s.Store.Put(ctx, key, value, ttl)
}

func (s *dyingStore) Delete(ctx context.Context, key string) error {
	if s.dead.Load() {
		return errDead
	}
	return s.Store.Delete(ctx, key)
}

func (s *dyingStore) Batch(ctx context.Context, writes []store.Write) error {
	if s.dead.Load() {
		return errDead
	}
	var keys []string
	for _, w := range writes {
		keys = append(keys, w.Key)
	}
	old := s.batches.Load()
	all := append(slices.Clone(*old), keys)
	s.batches.Store(&all)
	return s.Store.(store.Batcher).Batch(ctx, writes)
}

// sealedBadger opens a sealed Badger store in dir.
func sealedBadger(t *testing.T, dir string) (*store.Badger, *store.Sealed) {
	t.Helper()
	db, err := store.OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := store.NewRing([][]byte{bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return db, store.Seal(db, ring)
}

// storedTombstones reads every revocation tombstone in st.
func storedTombstones(t testing.TB, st store.Store) []revocationRecord {
	t.Helper()
	ctx := context.Background()
	keys, err := st.List(ctx, prefixRevocations)
	if err != nil {
		t.Fatal(err)
	}
	var out []revocationRecord
	for _, key := range keys {
		var r revocationRecord
		if err := getJSON(ctx, st, key, (*revocationWire)(&r)); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestRevocationSurvivesACrash(t *testing.T) {
	// The process dies while the disconnect's first revocation request
	// waits for an answer (its caller gone too). The grant was emptied and
	// the tombstone stored in one batch before that request, so the next
	// process, on the same Badger directory, revokes both tokens once the
	// tombstone's lease ends.
	dir := t.TempDir()
	db, sealed := sealedBadger(t, dir)
	dying := &dyingStore{Store: sealed}
	dying.batches.Store(&[][]string{})
	var opts Options
	var cfgs []Config
	h := newHarness(t, func(_ *harness, o *Options, c *[]Config) {
		o.Store = dying
		opts, cfgs = *o, *c
	})
	h.connect(h.as, "notion", "alice")
	g := h.grant("notion", "alice")
	inFlight, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	h.as.set(func(a *fakeAS) {
		a.onRevoke = func(http.ResponseWriter, request) bool {
			if first.CompareAndSwap(false, true) {
				close(inFlight)
				<-release // never answered before the process dies
			}
			return false
		}
	})
	ctx, leave := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.m.Disconnect(ctx, "notion", "alice", "")
	}()
	defer func() { close(release); <-done }()
	<-inFlight
	leave()
	dying.dead.Store(true)
	db.Close()

	db, sealed = sealedBadger(t, dir)
	defer db.Close()
	opts.Store = sealed
	next, err := New(opts, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	var after grantRecord
	if err := getJSON(context.Background(), sealed, grantKey("notion", "alice"), (*grantWire)(&after)); err != nil ||
		after.AccessToken != "" || after.RefreshToken != "" || after.Connection.State != connectors.StateDisconnected {
		t.Fatalf("the stored grant after the crash: %v, %v", after, err)
	}
	tombs := storedTombstones(t, sealed)
	if len(tombs) != 1 || tombs[0].RefreshToken != g.RefreshToken || tombs[0].AccessToken != g.AccessToken || tombs[0].Attempts != 1 ||
		!tombs[0].Next.Equal(h.clock.Now().Add(minRevokeBackoff)) {
		t.Fatalf("tombstones after the crash: %v", tombs)
	}
	batches := *dying.batches.Load()
	last := batches[len(batches)-1]
	if len(last) != 2 || !strings.HasPrefix(last[0], prefixRevocations) || last[1] != grantKey("notion", "alice") {
		t.Errorf("the disconnect's batch wrote %q, want the tombstone and the grant", last)
	}

	// The lease keeps a retry from sending during the first attempt.
	if retried, err := next.RetryRevocations(context.Background()); retried != 0 || err != nil {
		t.Fatalf("during the lease: RetryRevocations = %d, %v", retried, err)
	}
	h.clock.Add(minRevokeBackoff)
	if retried, err := next.RetryRevocations(context.Background()); retried != 1 || err != nil {
		t.Fatalf("after the lease: RetryRevocations = %d, %v", retried, err)
	}
	checkRetried(t, h.as.revokeRequests()[1:], g)
	if tombs := storedTombstones(t, sealed); len(tombs) != 0 {
		t.Errorf("tombstones after the retry: %v", tombs)
	}
}

func TestRevokedLeavesNoTombstone(t *testing.T) {
	// A revocation whose first attempt revokes every token, or that
	// cannot be made, leaves no tombstone behind, on a disconnect as on a
	// grant refused after one.
	h := newHarness(t, nil)
	ctx := context.Background()
	h.connect(h.as, "notion", "alice")
	if rev, err := h.m.Disconnect(ctx, "notion", "alice", ""); err != nil || !rev.Revoked || rev.Retrying {
		t.Fatalf("Disconnect = %+v, %v", rev, err)
	}
	if tombs := h.tombstones(); len(tombs) != 0 {
		t.Errorf("tombstones after a revoked disconnect: %v", tombs)
	}

	h.connect(h.as, "notion", "bob")
	g := h.grant("notion", "bob")
	h.st.Delete(ctx, clientKey("notion", g.Issuer))
	if rev, err := h.m.Disconnect(ctx, "notion", "bob", ""); err != nil || rev.Attempted || rev.Retrying ||
		!strings.Contains(rev.Detail, "client") {
		t.Fatalf("Disconnect without the client = %+v, %v", rev, err)
	}
	if tombs := h.tombstones(); len(tombs) != 0 {
		t.Errorf("tombstones after a disconnect without the client: %v", tombs)
	}

	// Disconnected while the consent was under way (as in
	// TestGrantAfterDisconnect).
	authURL, _ := h.m.Start(ctx, "notion", "carol", "")
	h.m.withGrant(ctx, h.m.conns["notion"], "carol", func(g *grantRecord) (bool, error) {
		return true, g.apply(connectors.EventDisconnect, "gone", h.clock.Now())
	})
	revokes := len(h.as.revokeRequests())
	if _, err := h.m.Callback(ctx, h.as.authorize(t, authURL, "carol"), "carol"); err == nil {
		t.Fatal("a grant after a disconnect was accepted")
	}
	if n := len(h.as.revokeRequests()) - revokes; n != 2 {
		t.Errorf("%d revocations of the refused grant's tokens, want 2", n)
	}
	if tombs := h.tombstones(); len(tombs) != 0 {
		t.Errorf("tombstones after a refused grant's tokens were revoked: %v", tombs)
	}
}
