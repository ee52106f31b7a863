package mcpmux

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzRequestState opens arbitrary requestStates: none may panic, and any
// that opens must be the one sealed (seeds are sealed afresh in each fuzz
// process), for the caller it was sealed to.
func FuzzRequestState(f *testing.F) {
	s, err := newStateSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	want := gatewayState{Method: "tools/call", Name: "a_echo", Expires: now.Add(time.Hour).Unix(), Inner: "up"}
	good := s.seal("alice", want)
	f.Add(good, "alice")
	f.Add(good, "bob")
	f.Add(statePrefix, "alice")
	f.Add(statePrefix+"!!!", "alice")
	f.Add(good[:len(good)-4], "alice")
	f.Fuzz(func(t *testing.T, state, caller string) {
		got, ok := s.open(caller, state, now)
		if ok && (caller != "alice" || got.Inner != want.Inner || got.Name != want.Name || got.Method != want.Method) {
			t.Fatalf("opened %q for %q as %+v", state, caller, got)
		}
	})
}

// FuzzHostPolicy checks arbitrary Host and Origin values against a
// policy: no panic, and a refusal always says why.
func FuzzHostPolicy(f *testing.F) {
	p := newHostPolicy([]string{"mcp.example.com", "*.corp.example"})
	for _, seed := range [][2]string{
		{"mcp.example.com", ""}, {"evil.example", "http://evil.example"}, {"[::1]:80", "null"},
		{"a.corp.example:1", "https://x.corp.example"}, {"[", "%"}, {"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, host, origin string) {
		r := httptest.NewRequest(http.MethodPost, "http://x/mcp", nil)
		r.Host = host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if why := p.check(r); why != "" && len(why) > 400 {
			t.Fatalf("a refusal %d bytes long", len(why))
		}
	})
}
