package strictjson

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestDifferentialAccepted checks that whatever Check accepts reads the same
// to encoding/json, to a first-wins reader, and after a round trip.
func TestDifferentialAccepted(t *testing.T) {
	for _, in := range validTexts {
		t.Run(testName(in), func(t *testing.T) {
			data := []byte(in)
			if err := Check(data, nil); err != nil {
				t.Fatalf("Check(%q) = %v", in, err)
			}
			checkReadingsAgree(t, data)
		})
	}
}

// probe reads the fields the gateway authorizes on, the way a handler built
// on encoding/json (mcp-go, the go-sdk before 1.3.1) reads them.
type probe struct {
	Method any    `json:"method"`
	Name   any    `json:"name"`
	Kind   any    `json:"kind"`
	Params *probe `json:"params"`
}

// exactProbe reads the same fields from a first-wins decoding by exact
// name, the way a strict authorizer reads them.
func exactProbe(v any) *probe {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	p := &probe{Method: m["method"], Name: m["name"], Kind: m["kind"]}
	if params, ok := m["params"]; ok {
		p.Params = exactProbe(params)
	}
	return p
}

// spelling is one way to write a member name in JSON, with what it means.
type spelling struct {
	raw     string // between the quotes
	decoded string
}

// spellings returns ways to write a name like field: itself, escaped, in
// other cases, with look-alike folding runes, and with invisible suffixes.
func spellings(field string) []spelling {
	out := []spelling{
		{field, field},
		{fmt.Sprintf(`\u%04x`, field[0]) + field[1:], field},
		{field[:1] + fmt.Sprintf(`\u%04X`, field[1]) + field[2:], field},
		{strings.ToUpper(field), strings.ToUpper(field)},
		{strings.ToUpper(field[:1]) + field[1:], strings.ToUpper(field[:1]) + field[1:]},
		{fmt.Sprintf(`\u%04x`, field[0]-'a'+'A') + field[1:], strings.ToUpper(field[:1]) + field[1:]},
		{field + `\u0000`, field + "\x00"},
		{field + " ", field + " "},
		{`\u200b` + field, "\u200b" + field},
	}
	if strings.Contains(field, "s") {
		out = append(out, spelling{strings.ReplaceAll(field, "s", "ſ"), strings.ReplaceAll(field, "s", "ſ")},
			spelling{strings.ReplaceAll(field, "s", `\u017f`), strings.ReplaceAll(field, "s", "ſ")})
	}
	if strings.Contains(field, "k") {
		out = append(out, spelling{strings.ReplaceAll(field, "k", `\u212a`), strings.ReplaceAll(field, "k", "\u212a")})
	}
	return out
}

// member writes one member for field under the spelling raw; params holds
// an object so that encoding/json can decode it into *probe.
func member(field, raw string, n int) string {
	if field == "params" {
		return fmt.Sprintf(`"%s":{"name":"v%d"}`, raw, n)
	}
	return fmt.Sprintf(`"%s":"v%d"`, raw, n)
}

// TestDifferentialAmbiguous checks that Check refuses every text that an
// encoding/json handler and a first-wins, exact-match authorizer read
// differently, and accepts the pairs of names no parser confuses.
//
// The differential is only asserted when the object holds the exact name:
// a lone "Name" is read by encoding/json and missed by an exact matcher,
// but that is a matching policy, not an ambiguous text, and the gateway
// forwards what it decided rather than the raw bytes.
func TestDifferentialAmbiguous(t *testing.T) {
	var differ, accepted int
	for _, field := range []string{"method", "name", "kind", "params"} {
		sp := spellings(field)
		for _, a := range sp {
			for _, b := range sp {
				for _, in := range ambiguousTexts(field, a.raw, b.raw) {
					exact := a.decoded == field || b.decoded == field
					d, ok := checkDifferential(t, in, !strings.EqualFold(a.decoded, b.decoded), exact)
					differ += d
					accepted += ok
				}
			}
		}
	}
	t.Logf("%d texts read differently, all rejected; %d accepted", differ, accepted)
	if differ < 100 || accepted < 10 {
		t.Fatalf("corpus too weak: %d differentials, %d accepted", differ, accepted)
	}
}

// ambiguousTexts places two spellings of field in one object, at the top
// level, nested in params, and around an unrelated member.
func ambiguousTexts(field, a, b string) []string {
	pair := member(field, a, 1) + "," + member(field, b, 2)
	texts := []string{
		"{" + pair + "}",
		`{"jsonrpc":"2.0",` + pair + `,"id":1}`,
		"{" + member(field, a, 1) + `,"other":[{"x":1}],` + member(field, b, 2) + "}",
	}
	if field != "params" {
		texts = append(texts, `{"method":"tools/call","params":{`+pair+`}}`)
	}
	return texts
}

// checkDifferential compares the two readings of in and Check's verdict,
// which must be acceptance exactly when wantOK; the readings must agree on
// accepted texts when exact says the object holds the exact name.
func checkDifferential(t *testing.T, in string, wantOK, exact bool) (differ, accepted int) {
	t.Helper()
	var std probe
	if err := json.Unmarshal([]byte(in), &std); err != nil {
		t.Fatalf("encoding/json cannot decode %s: %v", in, err)
	}
	first, err := decodeFirstWins([]byte(in))
	if err != nil {
		t.Fatalf("first-wins reader cannot decode %s: %v", in, err)
	}
	err = Check([]byte(in), nil)
	if (err == nil) != wantOK || IsSyntax(err) {
		t.Errorf("Check(%s) = %v, want ok=%v", in, err, wantOK)
	}
	if !exact || reflect.DeepEqual(&std, exactProbe(first)) {
		return 0, boolInt(err == nil)
	}
	if err == nil {
		t.Errorf("Check accepts %s, which encoding/json reads as %+v", in, std)
	}
	return 1, 0
}

// boolInt returns 1 for true.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
