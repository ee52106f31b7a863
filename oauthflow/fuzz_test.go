package oauthflow

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

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

// FuzzIDToken reads arbitrary claims as an ID token's: it never panics,
// an account is named only for the issuer and client the claims say, and
// what it shows is cut to length and free of control characters, so that
// a provider cannot put markup-breaking or unbounded text on a page.
func FuzzIDToken(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"https://as.example","aud":"c1","sub":"alice","email":"a@example.com","name":"Alice"}`,
		`{"iss":"https://as.example","aud":["c1","c2"],"sub":12345}`,
		`{"iss":"https://other.example","aud":"c1","sub":"mallory"}`,
		`{"iss":"https://as.example","aud":"c1","name":"\u0000\u001b[31mred\u202e"}`,
		`[]`, `{"aud":{"x":1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, claims []byte) {
		token := "e30." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
		a := parseIDToken(token).account("https://as.example", "c1")
		if a == nil {
			return
		}
		var fields map[string]any
		_ = json.Unmarshal(claims, &fields)
		if fields["iss"] != "https://as.example" {
			t.Fatalf("an account from claims of another issuer: %s", claims)
		}
		for _, s := range []string{a.Subject, a.Email, a.Name} {
			if len(s) > maxAccountField || strings.ContainsFunc(s, unicode.IsControl) || !utf8.ValidString(s) {
				t.Fatalf("the account shows %q from %s", s, claims)
			}
		}
	})
}
