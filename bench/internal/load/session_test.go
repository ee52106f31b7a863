package load

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestListFollowsCursors: one tools/list request of the load generator
// is the whole list. Against a gateway that pages its answer, the client
// asks for every page in turn with the cursor it was handed, counts one
// request, and stops at the page without a nextCursor; in both eras.
func TestListFollowsCursors(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a", ExtraTools: 3, NoRecord: true})
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := grants.New([]grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	mux, err := mcpmux.New(mcpmux.Options{Policy: policy, PageSize: 4,
		Connectors: []*connectors.Connector{{ID: "a", URL: u, Timeout: 5 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	var mu sync.Mutex
	var cursors []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tools/list"`)) {
			mu.Lock()
			_, after, _ := strings.Cut(string(body), `"cursor":`)
			cursors = append(cursors, after)
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		mux.ServeMCP(w, r, grants.Caller{ID: "bench"}, "")
	}))
	defer gw.Close()

	for _, era := range []string{EraLegacy, EraModern} {
		t.Run(era, func(t *testing.T) {
			cursors = nil
			pool, err := Dial(t.Context(), Options{URL: gw.URL, Method: MethodList, Era: era})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			if err := pool.Once(t.Context()); err != nil {
				t.Fatal(err)
			}
			// The upstream's 9 catalog tools and 3 extra, and the
			// gateway's own: 13 tools, 4 pages of 4.
			if len(cursors) != 4 || cursors[0] != "" {
				t.Fatalf("pages asked for: %q, want the first without a cursor and 3 more", cursors)
			}
			for i, c := range cursors[1:] {
				if !strings.HasPrefix(c, `"`) {
					t.Errorf("page %d was asked for without its cursor: %q", i+2, c)
				}
			}
			res := pool.Run(t.Context(), 200*time.Millisecond)
			if res.Errors != 0 || res.Requests == 0 {
				t.Fatalf("run: %d lists, %d errors: %v", res.Requests, res.Errors, res.ErrorSamples)
			}
			mu.Lock()
			pages := len(cursors)
			mu.Unlock()
			if want := 4 * (1 + int(res.Requests)); pages != want {
				t.Errorf("%d lists took %d pages, want %d", res.Requests, pages, want)
			}
		})
	}
}
