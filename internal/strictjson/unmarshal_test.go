package strictjson

import (
	"strings"
	"testing"
)

type inner struct {
	URL string `json:"url"`
}

type outer struct {
	inner
	ID     string `json:"id"`
	Plain  int
	Hidden string `json:"-"`
	secret string
}

func TestUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		exact      bool
		want       string // in the error, or "" for none
	}{
		{"exact names", `{"id":"a","url":"u","Plain":1}`, true, ""},
		{"unknown member, tolerant", `{"id":"a","extra":1}`, false, ""},
		{"unknown member, exact", `{"id":"a","extra":1}`, true, "unknown field"},
		{"case variant", `{"ID":"a"}`, false, `member "ID" is not spelled "id"`},
		{"unexported fields are no members", `{"Secret":"a"}`, false, ""},
		{"case variant of an embedded field", `{"URL":"u"}`, false, `not spelled "url"`},
		{"duplicate", `{"id":"a","id":"b"}`, false, "duplicate"},
		{"trailing data", `{"id":"a"} {}`, true, "after"},
		{"not an object", `[1]`, false, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v outer
			err := Unmarshal([]byte(tc.data), &v, tc.exact)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Unmarshal: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Unmarshal = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
