package conformance

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// startFixture serves a Fixture at /mcp on 127.0.0.1 until the test ends.
func startFixture(t *testing.T, era Era) string {
	t.Helper()
	f := NewFixture(era)
	mux := http.NewServeMux()
	mux.Handle("/mcp", f)
	srv := httptest.NewServer(mux)
	// Cleanups run last first: the sessions' streams end, then the server.
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close)
	return srv.URL + "/mcp"
}

// TestFixtureConformance runs the official suite's server scenarios
// against the fixture and requires every scenario the revision scores to
// pass. LegacyOnly is run at 2025-11-25 only, and ModernOnly at 2026-07-28
// only: at the other revision each is meant to refuse.
func TestFixtureConformance(t *testing.T) {
	for _, tc := range []struct {
		era          Era
		requirements string
	}{
		{BothEras, Requirements20251125},
		{BothEras, Requirements20260728},
		{LegacyOnly, Requirements20251125},
		{ModernOnly, Requirements20260728},
	} {
		t.Run(tc.era.String()+"/"+tc.requirements, func(t *testing.T) {
			results, err := Run(context.Background(), RunOptions{
				URL:          startFixture(t, tc.era),
				Requirements: tc.requirements,
				Dir:          t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			assertScoredPass(t, results)
		})
	}
}

// assertScoredPass fails the test for every scored scenario that failed,
// and logs the outcome of the unscored ones and every warning.
func assertScoredPass(t *testing.T, results map[string]Result) {
	t.Helper()
	passed, scored := 0, 0
	for _, name := range sortedNames(results) {
		r := results[name]
		for _, w := range r.Warnings {
			t.Logf("%s: warning %s: %s", name, w.ID, w.Message)
		}
		switch {
		case r.Scored && r.Passed:
			scored++
			passed++
		case r.Scored:
			scored++
			t.Errorf("%s failed: %s", name, describe(r.Failures))
		case r.Passed:
			t.Logf("not scored (%s): %s passed", r.NotScored, name)
		default:
			t.Logf("not scored (%s): %s failed: %s", r.NotScored, name, describe(r.Failures))
		}
	}
	t.Logf("%d of %d scored scenarios passed", passed, scored)
	if scored == 0 {
		t.Error("the suite ran no scored scenario")
	}
}

func sortedNames(results map[string]Result) []string {
	names := make([]string, 0, len(results))
	for name := range results {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func describe(checks []Check) string {
	var parts []string
	for _, c := range checks {
		parts = append(parts, c.ID+": "+c.Message)
	}
	return strings.Join(parts, "; ")
}

// TestLegacyOnlyRefusesModern checks that a LegacyOnly fixture answers a
// 2026-07-28 request as a 2025-11-25 server would: UnsupportedProtocolVersion
// listing only the handshake revisions, so that a client falls back to
// initialize.
func TestLegacyOnlyRefusesModern(t *testing.T) {
	url := startFixture(t, LegacyOnly)
	body := `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{` +
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	req.Header.Set("Mcp-Method", "server/discover")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Error *struct {
			Code int `json:"code"`
			Data struct {
				Supported []string `json:"supported"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || got.Error == nil || got.Error.Code != mcp.UNSUPPORTED_PROTOCOL_VERSION {
		t.Fatalf("status %d, error %+v: want 400 UnsupportedProtocolVersion", resp.StatusCode, got.Error)
	}
	if slices.Contains(got.Error.Data.Supported, mcp.ProtocolVersion20260728) || !slices.Contains(got.Error.Data.Supported, mcp.ProtocolVersion20251125) {
		t.Errorf("supported versions %v: want the handshake revisions only", got.Error.Data.Supported)
	}
}

// TestSuiteNotInstalled checks that a missing suite fails the run with the
// command that installs it, rather than letting a test pass unchecked.
func TestSuiteNotInstalled(t *testing.T) {
	_, err := runIn(context.Background(), t.TempDir(), RunOptions{
		URL: "http://127.0.0.1:1/mcp", Requirements: Requirements20260728, Dir: t.TempDir(),
	})
	if err == nil || !strings.Contains(err.Error(), InstallCommand) {
		t.Fatalf("err = %v, want one naming %q", err, InstallCommand)
	}
}
