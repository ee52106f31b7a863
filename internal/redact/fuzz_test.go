package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// The reference below states the package's model of an occurrence the
// slow and obvious way, so that the fuzz targets can hold the fast search
// to it: at each place, try every form of each character in turn.

// refForms returns the forms of the first character of v: itself, and
// every JSON escape of it unless it is plain. inJSON leaves out what JSON
// text cannot hold as is. A \u form's hex digits match in either case.
func refForms(v string, inJSON bool) (size int, forms []string) {
	r, size := utf8.DecodeRuneInString(v)
	if !inJSON || (r >= 0x20 && r != '"' && r != '\\') {
		forms = append(forms, v[:size])
	}
	if plain(r) || (r == utf8.RuneError && size == 1) {
		return size, forms
	}
	if c := shortEscape(r); c != 0 {
		forms = append(forms, `\`+string(rune(c)))
	}
	if r > 0xFFFF {
		hi, lo := utf16.EncodeRune(r)
		return size, append(forms, fmt.Sprintf(`\u%04x\u%04x`, hi, lo))
	}
	return size, append(forms, fmt.Sprintf(`\u%04x`, r))
}

// hasForm reports whether text begins with form, the hex digits of a \u
// form in either case.
func hasForm(text []byte, form string) bool {
	if len(text) < len(form) {
		return false
	}
	unicode := strings.HasPrefix(form, `\u`) && len(form) >= 6
	for i := 0; i < len(form); i++ {
		if a, b := text[i], form[i]; a != b && !(unicode && i%6 >= 2 && b >= 'a' && a|0x20 == b) {
			return false
		}
	}
	return true
}

// refAt reports whether an occurrence of v starts at text[p:].
func refAt(text []byte, p int, v string, inJSON bool) bool {
	if v == "" {
		return true
	}
	size, forms := refForms(v, inJSON)
	for _, f := range forms {
		if hasForm(text[p:], f) && refAt(text, p+len(f), v[size:], inJSON) {
			return true
		}
	}
	return false
}

// refOccurs reports whether an occurrence of v starts at any of the
// places ok allows (any place, when ok is nil).
func refOccurs(text []byte, v string, inJSON bool, ok []bool) bool {
	for p := 0; p <= len(text); p++ {
		if (ok == nil || ok[p]) && refAt(text, p, v, inJSON) {
			return true
		}
	}
	return false
}

// charStarts marks the places in JSON text where a character begins, as
// opposed to the inside of an escape sequence.
func charStarts(text []byte) []bool {
	ok := make([]bool, len(text)+1)
	in := false
	for i := 0; i < len(text); {
		ok[i] = true
		switch {
		case in && text[i] == '\\' && i+1 < len(text) && text[i+1] == 'u':
			i += 6
			continue
		case in && text[i] == '\\':
			i += 2
			continue
		case text[i] == '"':
			in = !in
		}
		i++
	}
	if len(text) > 0 {
		ok[len(text)] = true
	}
	return ok
}

// masked is out with every marker made into bytes no secret holds, so
// that what a marker spells is not taken for a secret.
func masked(out []byte) []byte {
	return bytes.ReplaceAll(out, []byte(Marker), bytes.Repeat([]byte{0}, len(Marker)))
}

// fuzzSecret reports whether v can be a credential: a header value, which
// HTTP trims of white space, and which is more than JSON punctuation (no
// JSON can show such a value outside its strings in another way).
func fuzzSecret(v string) bool {
	return len(v) >= MinLength && len(v) <= 40 && httpguts.ValidHeaderFieldValue(v) && strings.TrimSpace(v) == v &&
		strings.Trim(v, " \t{}[],:") != ""
}

func fuzzSeeds(f *testing.F) {
	f.Add(token, []byte(`{"t":"Bearer ya29.a0Af\/H\u002Bx9Zq-T0k3n_zZ=="}`), 3)
	f.Add("abcdabcd", []byte("abcdabcdabcd"), 4)
	f.Add(`a\b"c-def`, []byte(`"a\\b\"c-def" a\b"c-def a\\b\u0022c-def`), 7)
	f.Add("12345678", []byte(`{"n":912345678}`), 9)
	f.Add("clé😀", []byte(`"cl\u00E9\ud83d\ude00" clé😀`), 5)
	f.Add("<>&<>&<>", []byte(`"\u003c\u003e\u0026<>&\u003C\u003E"`), 2)
	f.Add("61bcdefgh", []byte(`"\u0061bcdefgh"`), 3)
}

// FuzzText checks Text and Writer against the reference: no occurrence is
// left in what they write, text without one comes back byte for byte, and
// a stream cut anywhere reads as the whole.
func FuzzText(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, secret string, text []byte, cut int) {
		if !fuzzSecret(secret) || len(text) > 512 {
			return
		}
		s := New(secret)
		out := s.Text(text)
		if refOccurs(masked(out), secret, false, nil) {
			t.Fatalf("Text(%q) = %q holds %q", text, out, secret)
		}
		if !refOccurs(text, secret, false, nil) && !bytes.Equal(out, text) {
			t.Fatalf("Text(%q) = %q changed text without %q", text, out, secret)
		}
		if cut < 0 || cut > len(text) {
			cut = len(text) / 2
		}
		if got := streamed(t, s, text, cut); got != string(out) {
			t.Fatalf("streamed, cut at %d: %q, whole: %q", cut, got, out)
		}
	})
}

// FuzzJSON checks JSON on any input: valid JSON stays valid, no
// occurrence is left where a character of it begins, and JSON without one
// comes back byte for byte. Text that is not JSON gets what Text gives.
func FuzzJSON(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, secret string, text []byte, _ int) {
		if !fuzzSecret(secret) || len(text) > 512 {
			return
		}
		s := New(secret)
		out := s.JSON(text)
		if !json.Valid(text) {
			if want := s.Text(text); !bytes.Equal(out, want) {
				t.Fatalf("JSON(%q) = %q, not what Text gives: %q", text, out, want)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("JSON(%s) = %s, which is not JSON", text, out)
		}
		if m := masked(out); refOccurs(m, secret, true, charStarts(m)) {
			t.Fatalf("JSON(%s) = %s holds %q", text, out, secret)
		}
		if !refOccurs(text, secret, true, charStarts(text)) && !bytes.Equal(out, text) {
			t.Fatalf("JSON(%s) = %s changed JSON without %q", text, out, secret)
		}
	})
}

// FuzzEncoded writes a string holding the secret the way real encoders
// do, and checks that the string an agent decodes from the answer never
// holds the secret, and that a string without it arrives byte for byte.
func FuzzEncoded(f *testing.F) {
	f.Add(token, "Bearer ", " end", uint8(0))
	f.Add("k&y<1>'+=`/", "", "", uint8(3))
	f.Add("clé😀-key", "x", "", uint8(4))
	f.Add("abababab", "ab", "ab", uint8(2))
	f.Fuzz(func(t *testing.T, secret, before, after string, style uint8) {
		if !fuzzSecret(secret) || !utf8.ValidString(secret) || !utf8.ValidString(before) || !utf8.ValidString(after) {
			return
		}
		s := New(secret)
		for _, text := range []string{before + secret + after, before + after} {
			doc := []byte(`{"text":` + encode(text, style) + `,"n":[1,true,null]}`)
			out := s.JSON(doc)
			var got struct{ Text string }
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("JSON(%s) = %s: %v", doc, out, err)
			}
			if strings.Contains(strings.ReplaceAll(got.Text, Marker, "\x00"), secret) {
				t.Fatalf("JSON(%s) = %s holds %q", doc, out, secret)
			}
			rest := `{"text":"","n":[1,true,null]}`
			if !strings.Contains(text, secret) && !strings.Contains(rest, secret) && !bytes.Equal(out, doc) {
				t.Fatalf("JSON(%s) = %s changed JSON without %q", doc, out, secret)
			}
		}
	})
}

// encode writes s as a JSON string the way one of several encoders would:
// Go (with and without HTML escapes), PHP (\/ and \uXXXX beyond ASCII),
// .NET (upper-case \uXXXX for +, ', `, <, >, &, and beyond ASCII), Gson
// (lower-case, for <, >, &, =, ').
func encode(s string, style uint8) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		b.WriteString(encodeRune(r, style%5))
	}
	b.WriteByte('"')
	return b.String()
}

func encodeRune(r rune, style uint8) string {
	escapes := map[uint8]string{0: "<>&", 1: "", 2: "/", 3: "+'`<>&", 4: "<>&='"}[style]
	switch {
	case r == '"' || r == '\\':
		return `\` + string(r)
	case r == '/' && style == 2:
		return `\/`
	case r < 0x20 || strings.ContainsRune(escapes, r) || (r >= 0x80 && (style == 2 || style == 3)):
		var out string
		for _, u := range utf16.Encode([]rune{r}) {
			if style == 3 {
				out += fmt.Sprintf(`\u%04X`, u)
			} else {
				out += fmt.Sprintf(`\u%04x`, u)
			}
		}
		return out
	}
	return string(r)
}
