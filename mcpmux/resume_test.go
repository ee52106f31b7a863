package mcpmux

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// testSessionKey is the session key of these tests.
var testSessionKey = []byte("0123456789abcdef0123456789abcdef")

// FuzzSessionID opens arbitrary session ids for arbitrary callers and
// endpoints: none may panic, and only the id sealed (seeds are sealed
// with a fixed nonce, so that every fuzz process has the same), for its
// caller and endpoint, opens; no mutation of it does.
func FuzzSessionID(f *testing.F) {
	s, err := newSealer(testSessionKey)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	want := sessionClaims{Caller: "alice", Version: "2025-11-25", Caps: []byte(`{"elicitation":{}}`), Issued: now.Unix() - 60}
	// Sealed as sealJSON does, but with a fixed nonce: every fuzz worker
	// must have the same good id, or each would open the others'.
	plain, _ := json.Marshal(want)
	nonce := make([]byte, s.aead.NonceSize())
	good := sessionPrefix + sealEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, sealAAD(sessionPrefix, "alice")))
	for _, seed := range []string{good, good[:len(good)-1], good + "A", good[:20] + "\n" + good[20:], sessionPrefix, "mcpgate1." + good[len(sessionPrefix):]} {
		f.Add(seed, "alice", "")
	}
	f.Add(good, "bob", "")
	f.Add(good, "alice", "a")
	f.Fuzz(func(t *testing.T, id, caller, scope string) {
		got, ok := openSessionID(s, id, caller, scope, now)
		if ok != (id == good && caller == "alice" && scope == "") {
			t.Fatalf("opened %q for %q at %q: %v", id, caller, scope, ok)
		}
		if ok && (got.Version != want.Version || string(got.Caps) != string(want.Caps) || got.Issued != want.Issued) {
			t.Fatalf("opened %+v, sealed %+v", got, want)
		}
	})
}

// TestSealerOneSpelling checks that a sealed text opens only as it was
// sealed: not with other trailing bits in its last character nor with a
// line break inside, which a lenient base64 decoder reads as the same
// bytes, nor under another purpose.
func TestSealerOneSpelling(t *testing.T) {
	s, err := newSealer(testSessionKey)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	// A value whose sealed bytes leave spare bits in the last character.
	var text string
	for v := ""; ; v += "x" {
		if text = s.sealJSON(sessionPrefix, "alice", v); (len(text)-len(sessionPrefix))%4 != 0 {
			break
		}
	}
	last := strings.IndexByte(alphabet, text[len(text)-1])
	variants := map[string]string{
		"spare bits":      text[:len(text)-1] + string(alphabet[last^1]),
		"line break":      text[:len(text)/2] + "\n" + text[len(text)/2:],
		"carriage return": text[:len(text)/2] + "\r" + text[len(text)/2:],
		"another purpose": statePrefix + strings.TrimPrefix(text, sessionPrefix),
	}
	var v string
	if !s.openJSON(sessionPrefix, "alice", text, &v) {
		t.Fatal("the sealed text does not open")
	}
	for name, variant := range variants {
		if s.openJSON(sessionPrefix, "alice", variant, &v) || s.openJSON(statePrefix, "alice", variant, &v) {
			t.Errorf("%s: %q opens", name, variant)
		}
	}
}

// TestEndLocal checks that a notice from another instance, by tag, ends
// the session held here: it no longer answers and its streams end. A tag
// of no session here changes nothing.
func TestEndLocal(t *testing.T) {
	s, clock := smallSessions(4, 8)
	kept, ended := mustOpen(t, s, clock, "alice"), mustOpen(t, s, clock, "alice")
	s.EndLocal(sessionTag("no such id"))
	s.EndLocal(ended.tag())
	select {
	case <-ended.ended:
	default:
		t.Error("the ended session's streams go on")
	}
	if alive(s, ended) || !alive(s, kept) {
		t.Errorf("after EndLocal: ended alive %v, kept alive %v", alive(s, ended), alive(s, kept))
	}
	if len(s.byTag) != 1 || len(s.byID) != 1 {
		t.Errorf("the store holds %d tags and %d ids", len(s.byTag), len(s.byID))
	}
}

// TestRecheckDue checks that of the requests that find a session due for
// a recheck at once, exactly one asks the store, and none before
// SessionRecheck has passed.
func TestRecheckDue(t *testing.T) {
	ss := newSession(randomSessionID(), grants.Caller{ID: "alice"}, "", "2025-11-25")
	start := time.Unix(1_800_000_000, 0)
	ss.setExpiry(start, true)
	if ss.recheckDue(start.Add(SessionRecheck - time.Nanosecond)) {
		t.Fatal("due before SessionRecheck")
	}
	var due atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if ss.recheckDue(start.Add(SessionRecheck)) {
				due.Add(1)
			}
		})
	}
	wg.Wait()
	if due.Load() != 1 {
		t.Errorf("%d requests asked the store", due.Load())
	}
}

// noEnds is a SessionEnds that has seen no session end.
type noEnds struct{}

func (noEnds) End(context.Context, string) error           { return nil }
func (noEnds) Ended(context.Context, string) (bool, error) { return false, nil }

// TestIssueSessionCaps checks what a sealed id carries of the agent's
// capabilities: all of them, and the URL-elicitation flag, up to 1 KiB;
// past that none, so that the header stays small, while the session held
// where it was opened keeps them whole.
func TestIssueSessionCaps(t *testing.T) {
	m, err := New(Options{SessionKey: testSessionKey, Ended: noEnds{}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	small := json.RawMessage(`{"elicitation":{"url":{}}}`)
	big := json.RawMessage(`{"experimental":{"pad":"` + strings.Repeat("x", maxSealedCaps) + `"},"elicitation":{"url":{}}}`)
	for _, tc := range []struct {
		name     string
		caps     json.RawMessage
		wantCaps json.RawMessage
		maxLen   int
	}{{"small", small, small, 200}, {"over 1 KiB", big, nil, 200}} {
		ss := m.issueSession(grants.Caller{ID: "alice"}, "a", "2025-11-25", tc.caps)
		c, ok := openSessionID(*m.sessionSeal, ss.id, "alice", "a", m.now())
		if !ok || string(c.Caps) != string(tc.wantCaps) || !c.URL || c.Version != "2025-11-25" {
			t.Errorf("%s: opened %v as %+v", tc.name, ok, c)
		}
		if len(ss.id) > tc.maxLen || string(ss.caps) != string(tc.caps) || !ss.urlElicitation {
			t.Errorf("%s: id of %d bytes, held caps %d bytes, URL elicitation %v", tc.name, len(ss.id), len(ss.caps), ss.urlElicitation)
		}
	}
}
