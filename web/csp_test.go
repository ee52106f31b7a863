package web

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// TestStyleSources checks that the policy names the hash of each page's
// style, and that a page that cannot be read stops the program rather
// than leaving its style out of the policy unseen.
func TestStyleSources(t *testing.T) {
	got := styleSources(fstest.MapFS{
		"a.html": {Data: []byte("<style>p{}</style>")},
		"b.html": {Data: []byte("<p>no style</p>")},
	})
	if strings.Count(got, "'sha256-") != 1 {
		t.Errorf("styleSources of one style = %q", got)
	}
	if got := styleSources(fstest.MapFS{}); got != "'none'" {
		t.Errorf("styleSources of no page = %q, want 'none'", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("styleSources of a page it cannot read did not panic")
		}
	}()
	styleSources(fstest.MapFS{"a.html": {Mode: fs.ModeDir}})
}
