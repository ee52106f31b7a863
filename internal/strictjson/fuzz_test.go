package strictjson

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzCheck checks Check against encoding/json's tokenizer: Check must
// accept a text exactly when it is valid JSON, valid UTF-8, no deeper than
// the default limit and free of names equal under case folding, and then
// every reader must agree on what it means.
func FuzzCheck(f *testing.F) {
	for _, in := range validTexts {
		addSeed(f, in)
	}
	for _, tc := range rejectedTexts {
		addSeed(f, tc.in)
	}
	for _, in := range []string{`{"name\u0000":1,"name":2}`, `{"\u017f":1,"S":2}`, `{"a":"\ud800\udc00"}`} {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data, nil)
		checkError(t, data, err)
		valid := json.Valid(data)
		if err == nil && !valid {
			t.Fatalf("Check accepts %q but json.Valid does not", data)
		}
		if IsSyntax(err) && valid && utf8.Valid(data) {
			t.Fatalf("Check(%q) = %v, a syntax error, but the text is valid JSON", data, err)
		}
		if !valid {
			return
		}
		sh, serr := shapeOf(data)
		if serr != nil {
			t.Fatalf("tokenizer cannot walk %q, which json.Valid accepts: %v", data, serr)
		}
		want := utf8.Valid(data) && sh.depth <= DefaultMaxDepth && !sh.ambiguous
		if (err == nil) != want {
			t.Fatalf("Check(%q) = %v, want ok=%v (%+v)", data, err, want, sh)
		}
		if err == nil {
			checkReadingsAgree(t, data)
		}
	})
}

// addSeed adds in to the corpus unless it is large: the fuzzer minimizes
// every new input it finds, and a 200 KB seed stalls it for minutes.
func addSeed(f *testing.F, in string) {
	if len(in) <= 4096 {
		f.Add([]byte(in))
	}
}

// checkError checks that err, if any, is an *Error pointing into data.
func checkError(t *testing.T, data []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	e, ok := err.(*Error)
	if !ok || e.Reason == "" || e.Offset < 0 || e.Offset > int64(len(data)) {
		t.Fatalf("Check(%q) = %#v, want an *Error with a reason and an offset in [0, %d]", data, err, len(data))
	}
}

// checkReadingsAgree checks that last-wins and first-wins readings of an
// accepted text are equal, as is a re-marshalled copy.
func checkReadingsAgree(t *testing.T, data []byte) {
	t.Helper()
	last, err := decodeLastWins(data)
	if err != nil {
		t.Fatalf("encoding/json cannot decode accepted %q: %v", data, err)
	}
	first, err := decodeFirstWins(data)
	if err != nil || !reflect.DeepEqual(last, first) {
		t.Fatalf("readings of accepted %q differ: %v, %v (%v)", data, last, first, err)
	}
	again, err := json.Marshal(last)
	if err != nil {
		t.Fatalf("re-marshalling %q: %v", data, err)
	}
	if round, err := decodeLastWins(again); err != nil || !reflect.DeepEqual(round, last) {
		t.Fatalf("round trip of %q gave %v (%v), want %v", data, round, err, last)
	}
}
