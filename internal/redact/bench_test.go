package redact

import (
	"bytes"
	"net/http"
	"testing"
)

// benchResult is a tool result of about 4 KB, the size of a typical one.
var benchResult = []byte(`{"content":[{"type":"text","text":"` +
	string(bytes.Repeat([]byte("lorem ipsum dolor sit amet, consectetur adipiscing elit "), 72)) + `"}],"isError":false}`)

// BenchmarkJSON measures the cost a tools/call result pays: the common
// case, without a secret, and the rare one, with one.
func BenchmarkJSON(b *testing.B) {
	s := FromHeader(http.Header{"Authorization": {"Bearer " + token}})
	withSecret := bytes.Replace(benchResult, []byte("lorem"), []byte(token), 1)
	for _, bc := range []struct {
		name string
		text []byte
	}{{"clean", benchResult}, {"echo", withSecret}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.text)))
			b.ReportAllocs()
			for b.Loop() {
				s.JSON(bc.text)
			}
		})
	}
}

// BenchmarkFromHeader measures building the Secrets of one request.
func BenchmarkFromHeader(b *testing.B) {
	h := http.Header{"Authorization": {"Bearer " + token}}
	b.ReportAllocs()
	for b.Loop() {
		FromHeader(h)
	}
}
