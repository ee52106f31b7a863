package strictjson

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// toolsCall is a typical MCP request, the gateway's most common body.
const toolsCall = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"github_create_issue",` +
	`"arguments":{"owner":"mcpgate","repo":"caddy-mcpgate","title":"Session id lost on reload",` +
	`"body":"Steps:\n1. start caddy\n2. reload\n\u2192 404","labels":["bug","gateway"],"assignees":[]},` +
	`"_meta":{"progressToken":"c0ffee"}}}`

// validTexts are texts that Check accepts.
var validTexts = []string{
	`{}`,
	`[]`,
	` {} `,
	"\t\n\r [ ] \n",
	`0`,
	`-0`,
	`1`,
	`-1.5e10`,
	`1E+2`,
	`1e-2`,
	`0.0`,
	`123456789012345678901234567890123456789012345678901234567890`,
	`1e400`,
	`-0.000000000000000000000000001`,
	`true`,
	`false`,
	`null`,
	`""`,
	`"hello"`,
	`"\"\\\/\b\f\n\r\t"`,
	`"\u00e9\uD83D\uDE00"`,
	`"é😀 \u2028 ` + "\u2028\x7f" + `"`,
	`"\ud800"`,
	`"\udc00\ud800x"`,
	`"\u0000"`,
	`[1,"a",true,false,null,{},[],-2.5E-3]`,
	`{"a":1,"b":[1,2,{"c":null}],"d":{"e":{"f":"g"}}}`,
	`{ "a" : 1 , "b" : [ 1 , 2 ] }`,
	`{"a":{"a":{"a":1}}}`,
	`{"x":{"a":1},"a":2}`,
	`[{"k":1},{"k":2},{"K":3}]`,
	`{"name":1,"name\u0000":2,"name ":3,"\u200bname":4}`,
	`{"ß":1,"ss":2}`,
	`{"Name":1}`,
	`{"\u212a":1}`,
	`{"\ud800":1,"\ud800\udc00":2}`,
	`{"":1,"a":2}`,
	toolsCall,
	manyMembers(40, ""),
	nested(64, "[", "]"),
	nested(64, `{"a":`, "}"),
}

// rejectCase is a text that Check refuses, with what the error must say.
type rejectCase struct {
	in     string
	reason string
	syntax bool
}

// rejectedTexts are texts that Check refuses.
var rejectedTexts = []rejectCase{
	{`hello`, `invalid character 'h' looking for beginning of value`, true},
	{``, `unexpected end of JSON input`, true},
	{`  `, `unexpected end of JSON input`, true},
	{`{`, `unexpected end of JSON input`, true},
	{`[1,`, `unexpected end of JSON input`, true},
	{`{"a":1`, `unexpected end of JSON input`, true},
	{`{"a"`, `unexpected end of JSON input`, true},
	{`[1,]`, `invalid character ']' looking for beginning of value`, true},
	{`{"a":1,}`, `invalid character '}' looking for beginning of object key string`, true},
	{`{'a':1}`, `invalid character '\'' looking for beginning of object key string`, true},
	{`'a'`, `invalid character '\'' looking for beginning of value`, true},
	{`NaN`, `invalid character 'N' looking for beginning of value`, true},
	{`-Infinity`, `invalid character 'I' in numeric literal`, true},
	{`01`, `invalid character '1' after top-level value`, true},
	{`[01]`, `invalid character '1' after array element`, true},
	{`1.`, `unexpected end of JSON input`, true},
	{`[1.]`, `invalid character ']' after decimal point in numeric literal`, true},
	{`.5`, `invalid character '.' looking for beginning of value`, true},
	{`+1`, `invalid character '+' looking for beginning of value`, true},
	{`1e`, `unexpected end of JSON input`, true},
	{`[1e+]`, `invalid character ']' in exponent of numeric literal`, true},
	{`--1`, `invalid character '-' in numeric literal`, true},
	{`0x10`, `invalid character 'x' after top-level value`, true},
	{`"\x"`, `invalid character 'x' in string escape code`, true},
	{`"\u12g4"`, `invalid character 'g' in \u hexadecimal character escape`, true},
	{`"\u12`, `unexpected end of JSON input`, true},
	{`"abc`, `unexpected end of JSON input`, true},
	{"\"tab\there\"", `invalid character '\t' in string literal`, true},
	{`tru`, `unexpected end of JSON input`, true},
	{`trUe`, `invalid character 'U' in literal true (expecting 'u')`, true},
	{`nul1`, `invalid character '1' in literal null (expecting 'l')`, true},
	{`True`, `invalid character 'T' looking for beginning of value`, true},
	{`{} {}`, `invalid character '{' after top-level value`, true},
	{`{"a" 1}`, `invalid character '1' after object key`, true},
	{`{"a":1 "b":2}`, `invalid character '"' after object key:value pair`, true},
	{`[1 2]`, `invalid character '2' after array element`, true},
	{`{1:2}`, `invalid character '1' looking for beginning of object key string`, true},
	{`[}`, `invalid character '}' looking for beginning of value`, true},
	{`{"a":1]`, `invalid character ']' after object key:value pair`, true},
	{"\xEF\xBB\xBF{}", `byte order mark at start of text`, true},
	{"\"\xff\"", `invalid UTF-8 in string`, true},
	{"\"\xc3\"", `invalid UTF-8 in string`, true},
	{"\"\xed\xa0\x80\"", `invalid UTF-8 in string`, true},
	{"\"\xc0\xaf\"", `invalid UTF-8 in string`, true},
	{"{\"na\xffme\":1}", `invalid UTF-8 in string`, true},
	{"\xff", `invalid character '\xff' looking for beginning of value`, true},
	{"\x00", `invalid character '\x00' looking for beginning of value`, true},
	{`{"a":1,"a":2}`, `duplicate member name "a"`, false},
	{`{"params":{"name":"x","name":"y"}}`, `duplicate member name "name"`, false},
	{`[{"k":1,"k":1}]`, `duplicate member name "k"`, false},
	{`{"a":{"x":1},"b":2,"a":3}`, `duplicate member name "a"`, false},
	{`{"name":1,"n\u0061me":2}`, `duplicate member name "name"`, false},
	{`{"\u006e\u0061\u006d\u0065":1,"name":2}`, `duplicate member name "name"`, false},
	{`{"a\/b":1,"a/b":2}`, `duplicate member name "a/b"`, false},
	{`{"\ud800":1,"\udc00":2}`, `duplicate member name "\ufffd"`, false},
	{`{"\ufffd":1,"\ud800":2}`, `duplicate member name "\ufffd"`, false},
	{`{"\ud83d\ude00":1,"😀":2}`, `duplicate member name "\U0001f600"`, false},
	{`{"a":1,"a":2,`, `duplicate member name "a"`, false},
	{`{"method":1,"METHOD":2}`, `member names "method" and "METHOD" differ only in case`, false},
	{`{"name":"ok","Name":"evil"}`, `member names "name" and "Name" differ only in case`, false},
	{`{"params":1,"paramſ":2}`, `member names "params" and "param\u017f" differ only in case`, false},
	{`{"kind":1,"\u212aind":2}`, `member names "kind" and "\u212aind" differ only in case`, false},
	{`{"jsonrpc":"2.0","params":{"arguments":{"x":[{"a":1,"A":2}]}}}`, `member names "a" and "A" differ only in case`, false},
	{manyMembers(40, `"k39":0`), `duplicate member name "k39"`, false},
	{manyMembers(40, `"K5":0`), `member names "k5" and "K5" differ only in case`, false},
	{manyMembers(16, `"K15":0`), `member names "k15" and "K15" differ only in case`, false},
	{manyMembers(15, `"\u212a0":0`), `member names "k0" and "\u212a0" differ only in case`, false},
	{`{"` + strings.Repeat("x", 100) + `":1,"` + strings.Repeat("x", 100) + `":2}`, `duplicate member name "` + strings.Repeat("x", 64) + `"...`, false},
	{nested(65, "[", "]"), `nesting deeper than 64`, false},
	{nested(65, `{"a":`, "}"), `nesting deeper than 64`, false},
	{nested(100000, "[", "]"), `nesting deeper than 64`, false},
}

// manyMembers returns an object with n members "k0".."k<n-1>" followed by
// the member extra, if any.
func manyMembers(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	b.WriteString(extra)
	return strings.TrimSuffix(b.String(), ",") + "}"
}

// nested returns depth openers around 0 and then the closers.
func nested(depth int, opener, closer string) string {
	return strings.Repeat(opener, depth) + "0" + strings.Repeat(closer, depth)
}

func TestCheckAccepts(t *testing.T) {
	for _, in := range validTexts {
		t.Run(testName(in), func(t *testing.T) {
			if err := Check([]byte(in), nil); err != nil {
				t.Fatalf("Check(%q) = %v, want nil", in, err)
			}
			if !json.Valid([]byte(in)) {
				t.Fatalf("json.Valid(%q) = false, want true", in)
			}
		})
	}
}

func TestCheckRejects(t *testing.T) {
	for _, tc := range rejectedTexts {
		t.Run(testName(tc.in), func(t *testing.T) {
			err := Check([]byte(tc.in), nil)
			if err == nil {
				t.Fatalf("Check(%q) = nil, want an error", tc.in)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Check(%q) = %q, want it to contain %q", tc.in, err, tc.reason)
			}
			if got := IsSyntax(err); got != tc.syntax {
				t.Errorf("IsSyntax(%q) = %v, want %v", err, got, tc.syntax)
			}
		})
	}
}

func TestCheckOffsets(t *testing.T) {
	tests := []struct {
		in     string
		offset int64
	}{
		{``, 0},
		{`hello`, 0},
		{`{`, 1},
		{`[1,]`, 3},
		{`{} {}`, 3},
		{`{"a":1,"a":2}`, 7},
		{`{"b":{"a":1,"A":2}}`, 12},
		{"\"ok\xff\"", 3},
		{"\xEF\xBB\xBF{}", 0},
		{nested(65, "[", "]"), 64},
	}
	for _, tc := range tests {
		t.Run(testName(tc.in), func(t *testing.T) {
			err := Check([]byte(tc.in), nil)
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Check(%q) = %v, want an *Error", tc.in, err)
			}
			if e.Offset != tc.offset {
				t.Errorf("Check(%q) offset = %d, want %d (%v)", tc.in, e.Offset, tc.offset, err)
			}
		})
	}
}

func TestCheckMaxDepth(t *testing.T) {
	tests := []struct {
		maxDepth int
		depth    int
		ok       bool
	}{
		{0, 64, true},
		{0, 65, false},
		{-1, 64, true},
		{3, 3, true},
		{3, 4, false},
		{1, 1, true},
		{1, 2, false},
		{20000, 10000, true},
		{20000, 10001, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("max%d/depth%d", tc.maxDepth, tc.depth), func(t *testing.T) {
			in := []byte(nested(tc.depth, "[", "]"))
			err := Check(in, &Options{MaxDepth: tc.maxDepth})
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
			if err == nil && !json.Valid(in) {
				t.Fatalf("Check accepts depth %d but json.Valid does not", tc.depth)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	err := Check([]byte(`{"a":1,"a":2}`), nil)
	want := `json: duplicate member name "a" at offset 7`
	if err == nil || err.Error() != want {
		t.Fatalf("Check error = %v, want %q", err, want)
	}
}

func TestIsSyntax(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("reading body: %w", syntaxError(0, "x")), true},
		{fmt.Errorf("reading body: %w", ambiguityError(0, "x")), false},
		{&Error{Reason: "built by hand"}, false},
		{fmt.Errorf("other"), false},
	}
	for _, tc := range tests {
		if got := IsSyntax(tc.err); got != tc.want {
			t.Errorf("IsSyntax(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// testName shortens a JSON text to a readable subtest name.
func testName(in string) string {
	if len(in) > 40 {
		return fmt.Sprintf("%.40q...%d", in, len(in))
	}
	return fmt.Sprintf("%q", in)
}
