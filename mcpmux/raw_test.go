package mcpmux

import "testing"

func TestSetMember(t *testing.T) {
	tests := []struct {
		name, in, key, value, want string
		remove                     bool
	}{
		{"replace", `{"a":1,"name":"x","b":[1,{"name":"y"}]}`, "name", `"z"`, `{"a":1,"name":"z","b":[1,{"name":"y"}]}`, false},
		{"append", `{"a":1}`, "name", `"z"`, `{"a":1,"name":"z"}`, false},
		{"append empty", `{}`, "name", `"z"`, `{"name":"z"}`, false},
		{"append spaced", ` { } `, "k", `1`, ` { "k":1} `, false},
		{"escaped key", `{"n\u0061me":"x"}`, "name", `"z"`, `{"n\u0061me":"z"}`, false},
		{"nested braces in string", `{"a":"}{","name":"x"}`, "name", `2`, `{"a":"}{","name":2}`, false},
		{"remove first", `{"name":"x", "a":1}`, "name", ``, `{"a":1}`, true},
		{"remove middle", `{"a":1,"name":"x","b":2}`, "name", ``, `{"a":1,"b":2}`, true},
		{"remove last", `{"a":1,"name":"x"}`, "name", ``, `{"a":1}`, true},
		{"remove only", `{"name":"x"}`, "name", ``, `{}`, true},
		{"remove absent", `{"a":1}`, "name", ``, `{"a":1}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var value []byte
			if !tt.remove {
				value = []byte(tt.value)
			}
			got, err := setMember([]byte(tt.in), tt.key, value)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMembersRejectsNonObjects(t *testing.T) {
	for _, in := range []string{``, `[]`, `"x"`, `1`, `{"a"`, `{"a":}`, `{"a":1`} {
		if err := members([]byte(in), func(string, span) bool { return true }); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestStringMember(t *testing.T) {
	s, ok := stringMember([]byte(`{"id":1,"name":"a\"b\u00e9"}`), "name")
	if !ok || s != "a\"bé" {
		t.Fatalf("got %q %v", s, ok)
	}
	if _, ok := stringMember([]byte(`{"name":1}`), "name"); ok {
		t.Fatal("number read as string")
	}
}
