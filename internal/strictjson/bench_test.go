package strictjson

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// largeToolsCall returns a tools/call request of at least size bytes whose
// arguments hold records with escapes, numbers and nested arrays, and one
// object with thousands of members, which takes the map path.
func largeToolsCall(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"bulk_import","arguments":{"index":{`)
	for i := range 5000 {
		fmt.Fprintf(&b, `"field_%d":%d,`, i, i)
	}
	b.WriteString(`"last":true},"records":[`)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"id":%d,"title":"Record \"%d\" \u00e9t\u00e9","score":%d.25e-3,"tags":["a","b",null,true],"note":"línea\nsiguiente"},`, i, i, i)
	}
	b.WriteString(`{}]}}}`)
	return []byte(b.String())
}

func BenchmarkCheckToolsCall(b *testing.B) {
	data := []byte(toolsCall)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(data, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckLarge(b *testing.B) {
	data := largeToolsCall(1 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(data, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONValid is the standard library's syntax check on the same
// inputs, for scale.
func BenchmarkJSONValid(b *testing.B) {
	for _, bc := range []struct {
		name string
		data []byte
	}{{"ToolsCall", []byte(toolsCall)}, {"Large", largeToolsCall(1 << 20)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(bc.data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
