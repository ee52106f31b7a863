package strictjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

func TestFindAfterHashCollision(t *testing.T) {
	// An object of linearLimit+2 names where the map entry for "K3" is made
	// to point at "k0", as a hash collision would; find must still report
	// "k3" by falling back to the scan.
	data := []byte(manyMembers(linearLimit+1, `"K3":0`))
	s := scanner{data: data, maxDepth: DefaultMaxDepth}
	err := s.run()
	if err == nil || !strings.Contains(err.Error(), `"k3" and "K3"`) {
		t.Fatalf("run = %v, want k3/K3 clash", err)
	}
	f := &s.frames[0]
	f.set[s.foldHash([]byte("K3"))] = f.base
	p, ok := s.find(f, name{off: bytes.Index(data, []byte(`K3`)), n: 2})
	if !ok || string(s.nameBytes(p)) != "k3" {
		t.Fatalf("find after collision = %q, %v; want k3", s.nameBytes(p), ok)
	}
}

func TestAppendFoldedMatchesEqualFold(t *testing.T) {
	// Every rune with a case orbit, paired with each member of its orbit,
	// must fold to the same form; and folding must not merge what
	// bytes.EqualFold keeps apart.
	for r := rune(0); r <= unicode.MaxRune; r++ {
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			a, b := []byte(string(r)), []byte(string(o))
			if !bytes.Equal(appendFolded(nil, a), appendFolded(nil, b)) {
				t.Fatalf("%U and %U fold differently", r, o)
			}
		}
	}
	pairs := [][2]string{{"ß", "ss"}, {"ǅ", "Dž"}, {"İ", "i"}, {"ı", "i"}, {"name\x00", "name"}}
	for _, p := range pairs {
		same := bytes.Equal(appendFolded(nil, []byte(p[0])), appendFolded(nil, []byte(p[1])))
		if same != strings.EqualFold(p[0], p[1]) {
			t.Errorf("folding %q and %q: same=%v, EqualFold=%v", p[0], p[1], same, !same)
		}
	}
}

func TestUnescapeMatchesEncodingJSON(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`plain`, "plain"},
		{`\"\\\/\b\f\n\r\t`, "\"\\/\b\f\n\r\t"},
		{`\u0041\u00e9\u212a`, "Aé\u212a"},
		{`\ud83d\ude00`, "😀"},
		{`\ud83d`, "\ufffd"},
		{`\ude00\ud83d`, "\ufffd\ufffd"},
		{`\ud83dx`, "\ufffdx"},
		{`\ud83d\u0041`, "\ufffdA"},
		{`\ud83d\ud83d\ude00`, "\ufffd😀"},
	}
	for _, tc := range tests {
		var s scanner
		got := string(s.nameBytes(s.unescape([]byte(tc.raw))))
		var std string
		if err := json.Unmarshal([]byte(`"`+tc.raw+`"`), &std); err != nil || std != got {
			t.Errorf("unescape(%s) = %q, encoding/json gives %q (%v)", tc.raw, got, std, err)
		}
		if got != tc.want {
			t.Errorf("unescape(%s) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
