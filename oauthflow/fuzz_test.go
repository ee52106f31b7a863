package oauthflow

import (
	"bytes"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
)

// FuzzTokenResponse feeds token endpoint answers to the decoder and the
// checks: they never panic, and what they accept carries a token that can
// go into a header.
func FuzzTokenResponse(f *testing.F) {
	for _, seed := range []string{
		`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"a b"}`,
		`{"access_token":"at","expires_in":"60"}`,
		`{"access_token":"at","access_token":"other"}`,
		`{"access_token":"at","Access_Token":"other"}`,
		`{"error":"invalid_grant","error_description":"expired"}`,
		`access_token=at&token_type=bearer&expires_in=10`,
		`{"access_token":"a t","token_type":"DPoP","expires_in":-1}`,
		`<html>`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := decodeTokenBody(body)
		if err != nil || raw.Error != "" {
			return
		}
		tr, err := raw.check(now)
		if err != nil {
			return
		}
		if tr.AccessToken == "" || !visible(tr.AccessToken) || (tr.RefreshToken != "" && !visible(tr.RefreshToken)) {
			t.Fatalf("accepted a token that cannot go into a header: %q", tr.AccessToken)
		}
		if !tr.Expiry.IsZero() && !tr.Expiry.After(now) {
			t.Fatalf("accepted an expiry in the past: %v", tr.Expiry)
		}
		if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' && strictjson.Check(trimmed, nil) != nil {
			t.Fatalf("accepted JSON with duplicate or case-variant members: %s", body)
		}
	})
}

// FuzzState feeds state handles to the parser: it never panics and
// accepts only a handle it made itself with the key.
func FuzzState(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	f.Add(stateHandle(key, newFlowID()))
	f.Add("")
	f.Add(".")
	f.Add("AAAA.BBBB")
	f.Fuzz(func(t *testing.T, state string) {
		idText, ok := parseState(key, state)
		if !ok {
			return
		}
		id, err := b64.DecodeString(idText)
		if err != nil || stateHandle(key, id) != state {
			t.Fatalf("accepted %q, which the key never made", state)
		}
	})
}

// TestTokenBodySpelling checks that a token response whose member matches
// a field only without regard to case is refused: encoding/json alone
// would read "ACCESS_TOKEN" as the access token.
func TestTokenBodySpelling(t *testing.T) {
	if _, err := decodeTokenBody([]byte(`{"ACCESS_TOKEN":"at","token_type":"Bearer"}`)); err == nil {
		t.Fatal("accepted a case-variant access_token")
	}
	if raw, err := decodeTokenBody([]byte(`{"access_token":"at","token_type":"Bearer","ext":1}`)); err != nil || raw.AccessToken != "at" {
		t.Fatalf("refused an extension member: %v", err)
	}
}
