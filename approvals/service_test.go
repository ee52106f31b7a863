package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sealedMemory is a sealed store in memory, as the gateway's is sealed.
func sealedMemory(t testing.TB, now func() time.Time) *store.Sealed {
	t.Helper()
	ring, err := store.NewRing([][]byte{bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return store.Seal(store.NewMemoryClock(now), ring)
}

// newService is a Service on a sealed memory store with a clock of its own
// and the events it emits.
func newService(t testing.TB, o Options) (*Service, *clock, *[]Event) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	events := new([]Event)
	if o.Store == nil {
		o.Store = sealedMemory(t, c.now)
	}
	o.Now = c.now
	o.OnEvent = func(e Event) { mu.Lock(); *events = append(*events, e); mu.Unlock() }
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, c, events
}

var bob = Binding{Caller: "bob", Connector: "bank", Tool: "transfer", Policy: "p1"}

func check(t *testing.T, s *Service, b Binding, args string) (Outcome, Request) {
	t.Helper()
	out, r, err := s.Check(context.Background(), b, json.RawMessage(args))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return out, r
}

func approve(t *testing.T, s *Service, id, by string) {
	t.Helper()
	if _, err := s.Decide(context.Background(), Decision{ID: id, Approve: true, By: by}); err != nil {
		t.Fatalf("Decide: %v", err)
	}
}

func TestCheckWaitsThenPassesOnce(t *testing.T) {
	s, _, events := newService(t, Options{})
	out, r := check(t, s, bob, `{"to":"x","amount":5}`)
	if out != Wait || r.State != StatePending || !ValidID(r.ID) {
		t.Fatalf("first call: %v %+v", out, r)
	}
	// The same call again, arguments in another order: the same request.
	if out, again := check(t, s, bob, `{ "amount":5, "to":"x" }`); out != Wait || again.ID != r.ID {
		t.Fatalf("second call: %v %s, want wait on %s", out, again.ID, r.ID)
	}
	approve(t, s, r.ID, "alice")
	if out, _ := check(t, s, bob, `{"to":"x","amount":5}`); out != Pass {
		t.Fatalf("retry after approval: %v, want pass", out)
	}
	// A replay of the used approval asks anew.
	out, replay := check(t, s, bob, `{"to":"x","amount":5}`)
	if out != Wait || replay.ID == r.ID {
		t.Fatalf("replay: %v %s, want a new request", out, replay.ID)
	}
	kinds := []EventKind{}
	for _, e := range *events {
		kinds = append(kinds, e.Kind)
		if e.Request.Arguments != nil {
			t.Errorf("event %s carries arguments", e.Kind)
		}
	}
	want := []EventKind{EventRequested, EventApproved, EventUsed, EventRequested}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
}

func TestCheckBindsEveryField(t *testing.T) {
	s, _, _ := newService(t, Options{})
	_, r := check(t, s, bob, `{"amount":5}`)
	approve(t, s, r.ID, "alice")
	others := map[string]Binding{
		"caller":    {Caller: "eve", Connector: "bank", Tool: "transfer", Policy: "p1"},
		"connector": {Caller: "bob", Connector: "bank2", Tool: "transfer", Policy: "p1"},
		"tool":      {Caller: "bob", Connector: "bank", Tool: "pay", Policy: "p1"},
		"policy":    {Caller: "bob", Connector: "bank", Tool: "transfer", Policy: "p2"},
	}
	for name, b := range others {
		if out, _ := check(t, s, b, `{"amount":5}`); out != Wait {
			t.Errorf("another %s passed", name)
		}
	}
	for _, args := range []string{`{"amount":6}`, `{"amount":5.0}`, `{"amount":5,"x":null}`} {
		if out, _ := check(t, s, bob, args); out != Wait {
			t.Errorf("arguments %s passed an approval of {\"amount\":5}", args)
		}
	}
	if out, _ := check(t, s, bob, `{"amount":5}`); out != Pass {
		t.Errorf("the approved call did not pass")
	}
}

func TestCheckExpired(t *testing.T) {
	s, c, events := newService(t, Options{TTL: time.Minute})
	_, r := check(t, s, bob, `{}`)
	c.add(time.Minute)
	// A pending request past its time is expired, and cannot be approved.
	if _, err := s.Decide(context.Background(), Decision{ID: r.ID, Approve: true, By: "alice"}); !errors.Is(err, ErrNotPending) {
		t.Fatalf("approving a lapsed request: %v", err)
	}
	out, r2 := check(t, s, bob, ``)
	if out != Wait || r2.ID == r.ID {
		t.Fatalf("call after expiry: %v %s", out, r2.ID)
	}
	approve(t, s, r2.ID, "alice")
	c.add(time.Minute)
	if out, r3 := check(t, s, bob, `{}`); out != Wait || r3.ID == r2.ID {
		t.Fatalf("retry after the approval lapsed: %v", out)
	}
	if got, _ := s.Get(context.Background(), r2.ID); got.State != StateExpired {
		t.Errorf("lapsed approval is %s", got.State)
	}
	n := 0
	for _, e := range *events {
		if e.Kind == EventExpired {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d expired events, want 2", n)
	}
}

func TestDenied(t *testing.T) {
	s, _, _ := newService(t, Options{})
	_, r := check(t, s, bob, `{"a":1}`)
	if _, err := s.Decide(context.Background(), Decision{ID: r.ID, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if out, _ := check(t, s, bob, `{"a":1}`); out != Denied {
		t.Fatalf("retry after denial: %v", out)
	}
	if out, r2 := check(t, s, bob, `{"a":1}`); out != Wait || r2.ID == r.ID {
		t.Fatalf("a denial is told once; then: %v", out)
	}
}

func TestSelfApproval(t *testing.T) {
	s, _, _ := newService(t, Options{})
	_, r := check(t, s, bob, `{}`)
	if _, err := s.Decide(context.Background(), Decision{ID: r.ID, Approve: true, By: "bob"}); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self approval: %v", err)
	}
	if _, err := s.Decide(context.Background(), Decision{ID: r.ID, Approve: true, By: "bob", Trusted: true}); err != nil {
		t.Fatalf("trusted approval: %v", err)
	}
	self, _, _ := newService(t, Options{SelfApprove: true})
	_, r = check(t, self, bob, `{}`)
	if _, err := self.Decide(context.Background(), Decision{ID: r.ID, Approve: true, By: "bob"}); err != nil {
		t.Fatalf("self approval with SelfApprove: %v", err)
	}
}

func TestConcurrentRetriesOnePasses(t *testing.T) {
	s, _, _ := newService(t, Options{})
	_, r := check(t, s, bob, `{"n":1}`)
	approve(t, s, r.ID, "alice")
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			out, _, err := s.Check(context.Background(), bob, json.RawMessage(`{"n":1}`))
			if err != nil {
				t.Error(err)
			}
			if out == Pass {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if passed.Load() != 1 {
		t.Fatalf("%d retries passed, want 1", passed.Load())
	}
}

func TestMaxPending(t *testing.T) {
	s, c, _ := newService(t, Options{MaxPending: 2, TTL: time.Minute})
	for i := range 2 {
		check(t, s, bob, `{"i":`+string(rune('0'+i))+`}`)
	}
	if _, _, err := s.Check(context.Background(), bob, json.RawMessage(`{"i":9}`)); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("third pending: %v", err)
	}
	other := bob
	other.Caller = "carol"
	check(t, s, other, `{"i":9}`) // another caller has room of its own
	c.add(time.Minute)
	check(t, s, bob, `{"i":9}`) // lapsed requests give room back
}

func TestListAndStoreHideArguments(t *testing.T) {
	c := &clock{t: time.Now()}
	mem := store.NewMemoryClock(c.now)
	ring, _ := store.NewRing([][]byte{bytes.Repeat([]byte{7}, 32)})
	s, _, _ := newService(t, Options{Store: store.Seal(mem, ring)})
	_, r := check(t, s, bob, `{"secret":"hunter2"}`)
	keys, _ := mem.List(context.Background(), "")
	for _, k := range keys {
		raw, _ := mem.Get(context.Background(), k)
		if strings.Contains(string(raw), "hunter2") || strings.Contains(k, "bob") {
			t.Errorf("store key %s holds the argument or the caller in the clear", k)
		}
	}
	list, err := s.List(context.Background(), false)
	if err != nil || len(list) != 1 || list[0].Arguments != nil || list[0].ID != r.ID {
		t.Fatalf("List: %+v %v", list, err)
	}
	list, _ = s.List(context.Background(), true)
	if string(list[0].Arguments) != `{"secret":"hunter2"}` {
		t.Errorf("detail arguments %s", list[0].Arguments)
	}
	if n, _ := s.Pending(context.Background()); n != 1 {
		t.Errorf("pending %d", n)
	}
	approve(t, s, r.ID, "alice")
	if n, _ := s.Pending(context.Background()); n != 0 {
		t.Errorf("pending after approval %d", n)
	}
}
