package mcpgate_test

import (
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/redact"
)

// TestAPIEchoedCredentialHidden runs APIs that echo the credential the
// gateway injected (a bearer token, an X-Api-Key) into their bodies, raw,
// JSON-escaped and far into a long stream, and into a header the gateway
// lets through: the caller gets the marker, never the value, and the rest
// of the body byte for byte. An API that compresses its answer although
// asked for identity gets a 502, since nothing could be checked.
func TestAPIEchoedCredentialHidden(t *testing.T) {
	const (
		bearer = "echo-bearer-secret/42+x="
		key    = "echo-api-key-9b7c1e"
	)
	filler := strings.Repeat("0123456789abcdef", 4<<10) // 64 KiB, past one read's chunk
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if cred == "" {
			cred = r.Header.Get("X-Api-Key")
		}
		if r.Header.Get("Accept-Encoding") != "identity" {
			http.Error(w, "the gateway did not ask for identity", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Request-Id", "req-"+cred)
		switch r.URL.Path {
		case "/v1/json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"raw":%q,"escaped":"%s","filler":"%s","tail":"%s"}`,
				cred, strings.ReplaceAll(cred, "/", `\/`), filler, cred)
		case "/v1/text":
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, filler[:32<<10-3]+cred+filler)
		case "/v1/gzip", "/v1/gzip-second":
			if r.URL.Path == "/v1/gzip-second" {
				w.Header()["Content-Encoding"] = []string{"identity", "gzip"}
			} else {
				w.Header().Set("Content-Encoding", "gzip")
			}
			zw := gzip.NewWriter(w)
			fmt.Fprint(zw, cred)
			_ = zw.Close()
		case "/v1/range":
			// Ranges of a body would hand the credential over in pieces.
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader("echo:"+cred))
		case "/v1/trailer":
			w.Header().Set("Trailer", "X-Correlation-Id")
			fmt.Fprint(w, "body")
			w.Header().Set("X-Correlation-Id", "trailer-"+cred)
		case "/v1/hints":
			w.Header().Set("X-Request-Id", "hint-"+cred)
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("X-Request-Id", "final")
			fmt.Fprint(w, "body")
		case "/v1/utf16":
			w.Header().Set("Content-Type", "text/plain; charset=utf-16le")
			for _, c := range cred {
				_, _ = w.Write([]byte{byte(c), 0})
			}
		}
	}))
	t.Cleanup(api.Close)
	t.Setenv("MCPGATE_TEST_ECHO_BEARER", bearer)
	t.Setenv("MCPGATE_TEST_ECHO_KEY", key)
	startAPICaddy(t, fmt.Sprintf(`{
	%[1]s
	mcpgate {
		connector bearer {
			api %[2]s/v1
			auth bearer {env.MCPGATE_TEST_ECHO_BEARER}
		}
		connector keyed {
			api %[2]s/v1
			auth header X-Api-Key {env.MCPGATE_TEST_ECHO_KEY}
		}
		grant {
			src user:alice
			connectors bearer keyed
		}
	}
}
%[3]s {
	basic_auth {
%[4]s	}
	mcpgate
}
`, apiGlobals, api.URL, apiSite, basicAuthUsers(t, apiPasswords)))

	for conn, secret := range map[string]string{"bearer": bearer, "keyed": key} {
		escaped := strings.ReplaceAll(secret, "/", `\/`)
		for _, path := range []string{"json", "text"} {
			t.Run(conn+"/"+path, func(t *testing.T) {
				resp, body := apiDo(t, http.MethodGet, "/connectors/"+conn+"/api/"+path, "alice", nil, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				if strings.Contains(string(body), secret) || strings.Contains(string(body), escaped) {
					t.Error("the body carries the credential")
				}
				want := fmt.Sprintf(`{"raw":%q,"escaped":"%s","filler":"%s","tail":"%s"}`, redact.Marker, redact.Marker, filler, redact.Marker)
				if path == "text" {
					want = filler[:32<<10-3] + redact.Marker + filler
				}
				if string(body) != want {
					t.Errorf("the body is not the API's with the marker in place (%d bytes, want %d)", len(body), len(want))
				}
				if got := resp.Header.Get("X-Request-Id"); got != "req-"+redact.Marker {
					t.Errorf("X-Request-Id reached the caller as %q", got)
				}
			})
		}
		for _, path := range []string{"gzip", "gzip-second", "utf16"} {
			t.Run(conn+"/"+path, func(t *testing.T) {
				resp, body := apiDo(t, http.MethodGet, "/connectors/"+conn+"/api/"+path, "alice", nil, http.Header{"Accept-Encoding": {"gzip"}})
				if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(body), secret) {
					t.Errorf("an echo that cannot be searched: %d %q", resp.StatusCode, body)
				}
			})
		}
		t.Run(conn+"/range", func(t *testing.T) {
			resp, body := apiDo(t, http.MethodGet, "/connectors/"+conn+"/api/range", "alice", nil,
				http.Header{"Range": {"bytes=0-9,10-17,18-40"}})
			if resp.StatusCode != http.StatusOK || string(body) != "echo:"+redact.Marker {
				t.Errorf("a ranged echo: %d %q", resp.StatusCode, body)
			}
		})
		t.Run(conn+"/trailer", func(t *testing.T) {
			resp, body := apiDo(t, http.MethodGet, "/connectors/"+conn+"/api/trailer", "alice", nil, nil)
			if got := resp.Trailer.Get("X-Correlation-Id"); resp.StatusCode != http.StatusOK || got != "trailer-"+redact.Marker {
				t.Errorf("an echo in a trailer: %d %q, trailer %q", resp.StatusCode, body, got)
			}
		})
		t.Run(conn+"/hints", func(t *testing.T) {
			hints, _ := getWithHints(t, "/connectors/"+conn+"/api/hints")
			if len(hints) != 1 || hints[0].Get("X-Request-Id") != "hint-"+redact.Marker {
				t.Errorf("an echo in early hints reached the caller as %q", hints)
			}
		})
	}
}
