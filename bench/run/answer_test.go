package main

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestOwnTools: a test upstream serves ownTools tools of its own, and
// -extra-tools adds to them, as the list part's and the scale part's
// catalogs assume: 10 upstreams with 41 extra serve 500 tools.
func TestOwnTools(t *testing.T) {
	for _, extra := range []int{0, 41} {
		up := testupstream.StartT(t, testupstream.Options{ExtraTools: extra, NoRecord: true})
		a, err := listAnswer(t.Context(), up.URL)
		if err != nil {
			t.Fatal(err)
		}
		if a.Tools != ownTools+extra || a.Pages != 1 || a.Bytes == 0 {
			t.Errorf("extra %d: %+v, want %d tools in one page", extra, a, ownTools+extra)
		}
	}
}

// TestListAnswerPages: listAnswer follows nextCursor to the last page and
// counts every page's tools.
func TestListAnswerPages(t *testing.T) {
	s := server.NewMCPServer("paged", "1", server.WithPaginationLimit(10))
	for i := range 25 {
		s.AddTool(mcp.NewTool(fmt.Sprintf("t%02d", i)), nil)
	}
	hs := httptest.NewServer(server.NewStreamableHTTPServer(s))
	defer hs.Close()
	a, err := listAnswer(t.Context(), hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	if a.Tools != 25 || a.Pages != 3 || a.Bytes == 0 {
		t.Errorf("%+v, want 25 tools in 3 pages", a)
	}
}
