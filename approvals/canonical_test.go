package approvals

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		``:                                 `{}`,
		`null`:                             `{}`,
		` {} `:                             `{}`,
		`{"b":1,"a":[1.50,{"d":2,"c":3}]}`: `{"a":[1.50,{"c":3,"d":2}],"b":1}`,
		`{"s":"<a&b>\u00e9"}`:              `{"s":"<a&b>é"}`,
		`{"n":1e3, "t":true,"x":null}`:     `{"n":1e3,"t":true,"x":null}`,
	} {
		got, err := Canonical(json.RawMessage(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{`[]`, `"x"`, `{"a":1,"a":2}`, `{`, `{} {}`} {
		if _, err := Canonical(json.RawMessage(bad)); err == nil {
			t.Errorf("Canonical(%s) accepted", bad)
		}
	}
}

// FuzzCanonical: the canonical form is a valid object, a fixed point,
// and the same for every text json.Compact makes one of.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"b":[1,{"y":null,"x":"\u0041"}],"a":2.0}`, ` {"a" : "b" } `, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Canonical(raw)
		if err != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(c, &m); err != nil {
			t.Fatalf("canonical %q of %q is not an object: %v", c, raw, err)
		}
		again, err := Canonical(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", c, again, err)
		}
		var compact bytes.Buffer
		if json.Compact(&compact, raw) == nil {
			if other, err := Canonical(compact.Bytes()); err != nil || !bytes.Equal(other, c) {
				t.Fatalf("compacted %q canonicalizes to %q, not %q", compact.Bytes(), other, c)
			}
		}
	})
}
