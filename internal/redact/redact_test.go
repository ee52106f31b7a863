package redact

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// token is a credential shaped like an OAuth access token: base64 with
// "/", "+" and "=", which some encoders escape.
const token = "ya29.a0Af/H+x9Zq-T0k3n_zZ=="

func TestJSON(t *testing.T) {
	for _, tc := range []struct {
		name, secret, in, want string
	}{
		{"raw", token, `{"text":"Bearer ` + token + `"}`, `{"text":"Bearer [redacted]"}`},
		{"inside a longer string", token, `{"t":"x` + token + `y"}`, `{"t":"x[redacted]y"}`},
		{"twice", token, `["` + token + `","` + token + `"]`, `["[redacted]","[redacted]"]`},
		{"in a key", token, `{"` + token + `":1}`, `{"[redacted]":1}`},
		{"slash escaped (PHP)", token, `{"t":"ya29.a0Af\/H+x9Zq-T0k3n_zZ=="}`, `{"t":"[redacted]"}`},
		{".NET escapes, upper-case hex", token, `{"t":"ya29.a0Af/H\u002Bx9Zq-T0k3n_zZ\u003D\u003D"}`, `{"t":"[redacted]"}`},
		{"Gson escapes, lower-case hex", token, `{"t":"ya29.a0Af\u002fH\u002bx9Zq-T0k3n_zZ\u003d\u003d"}`, `{"t":"[redacted]"}`},
		{"Go's HTML escapes", "key&v<1>x", `"key\u0026v\u003c1\u003ex"`, `"[redacted]"`},
		{"quote and backslash", `k"ey\value`, `"k\"ey\\value"`, `"[redacted]"`},
		{"quote and backslash as \\u", `k"ey\value`, `"k\u0022ey\u005Cvalue"`, `"[redacted]"`},
		{"non-ASCII raw", "clé-secrète-42", `"clé-secrète-42"`, `"[redacted]"`},
		{"non-ASCII escaped", "clé-secrète-42", `"cl\u00e9-secr\u00E8te-42"`, `"[redacted]"`},
		{"beyond the BMP", "key😀value", `"key\ud83d\ude00value"`, `"[redacted]"`},
		{"after escapes", token, `"\\\n` + token + `"`, `"\\\n[redacted]"`},
		{"overlapping occurrences", "abcdabcd", `"xabcdabcdabcdx"`, `"x[redacted]x"`},
		{"no plain character", "<>&<>&<>", `["<>&<>&<>","\u003c\u003e\u0026\u003C\u003E\u0026\u003c\u003e"]`, `["[redacted]","[redacted]"]`},
		{"a number", "12345678", `{"n":9912345678,"s":"12345678"}`, `{"n":"[redacted]","s":"[redacted]"}`},
		{"across scalars", "1,2,3,44", `[1,2,3,444,5]`, `["[redacted]","[redacted]","[redacted]","[redacted]",5]`},
		{"a literal", "true,nul", `[true,null,"true,nul"]`, `["[redacted]","[redacted]","[redacted]"]`},
		// Inside an escape, the bytes are not the string's text: "\u0061"
		// is "a", and "61bcdefgh" is not in "abcdefgh".
		{"inside an escape", "61bcdefgh", `"\u0061bcdefgh"`, `"\u0061bcdefgh"`},
		{"as short as can be", "k3y-abcd", `"k3y-abcd k3y-abc"`, `"[redacted] k3y-abc"`},
		// Too short to tell from an accident: "t" is in "text".
		{"too short", "t", `{"type":"text","t":"t"}`, `{"type":"text","t":"t"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(New(tc.secret).JSON([]byte(tc.in)))
			if got != tc.want {
				t.Errorf("JSON(%s) = %s, want %s", tc.in, got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("JSON(%s) = %s, which is not JSON", tc.in, got)
			}
		})
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		name, secret, in, want string
	}{
		{"raw", token, "Authorization: Bearer " + token + "\r\n", "Authorization: Bearer [redacted]\r\n"},
		{"escaped in JSON", token, `{"t":"ya29.a0Af\/H\u002Bx9Zq-T0k3n_zZ=="}`, `{"t":"[redacted]"}`},
		{"inside an escape too", "61bcdefgh", `"\u0061bcdefgh"`, `"\u00[redacted]"`},
		{"raw backslashes", `a\b\c-long`, `path a\b\c-long`, `path [redacted]`},
		{"backslashes either way", `a\b\c-long`, `a\\b\c-long`, `[redacted]`},
		{"not JSON", token, "\x00" + token, "\x00[redacted]"},
		{"adjacent", "abababab", "abababababab", "[redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(New(tc.secret).Text([]byte(tc.in))); got != tc.want {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestJSONNotJSON checks that text that is not JSON is redacted as any
// text is, a bare quote or backslash included.
func TestJSONNotJSON(t *testing.T) {
	in := `{"t":"` + `a"b-secret` + `"`
	if got := string(New(`a"b-secret`).JSON([]byte(in))); got != `{"t":"[redacted]"` {
		t.Errorf("JSON(%s) = %s", in, got)
	}
}

// TestUnchangedIsFree checks that text without a secret comes back as the
// same slice, at no allocation: the hot path pays one scan and nothing
// more.
func TestUnchangedIsFree(t *testing.T) {
	s := New(token, "x-api-key-value")
	in := []byte(`{"content":[{"type":"text","text":"ya29 is not a token, and x-api-key is not a key"}]}`)
	for name, f := range map[string]func([]byte) []byte{"JSON": s.JSON, "Text": s.Text} {
		if out := f(in); &out[0] != &in[0] || len(out) != len(in) {
			t.Errorf("%s returned a copy of text without a secret", name)
		}
		if n := testing.AllocsPerRun(100, func() { f(in) }); n != 0 {
			t.Errorf("%s allocates %v times for text without a secret", name, n)
		}
	}
}

func TestNilHidesNothing(t *testing.T) {
	var s *Secrets
	in := []byte(`{"t":"x"}`)
	if string(s.JSON(in)) != string(in) || string(s.Text(in)) != string(in) || s.String("x") != "x" {
		t.Error("nil Secrets changed its input")
	}
	if New("", "1234567") != nil || FromHeader(nil) != nil || FromHeader(http.Header{"X-Key": {""}, "Authorization": {"Bearer t"}}) != nil {
		t.Error("no values long enough made non-nil Secrets")
	}
}

func TestFromHeader(t *testing.T) {
	s := FromHeader(http.Header{
		"Authorization": {"Bearer " + token},
		"X-Api-Key":     {"Key k3y-v4lue-0123"},
	})
	in := `token ` + token + `, key Key k3y-v4lue-0123, k3y-v4lue-0123 alone, scheme Bearer`
	want := `token [redacted], key [redacted], k3y-v4lue-0123 alone, scheme Bearer`
	if got := s.String(in); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// A value without a scheme is a credential all the same.
	if got := FromHeader(http.Header{"Authorization": {token}}).String(token); got != Marker {
		t.Errorf("an Authorization value without a scheme: %s", got)
	}
}

func TestError(t *testing.T) {
	s := New(token)
	clean := errors.New("upstream timed out")
	if got := s.Error(clean); got != clean {
		t.Errorf("an error without a secret was replaced: %v", got)
	}
	dirty := fmt.Errorf("upstream answered request %q", token)
	got := s.Error(dirty)
	if got.Error() != `upstream answered request "[redacted]"` || errors.Unwrap(got) != nil {
		t.Errorf("Error(%v) = %v", dirty, got)
	}
}
