package egress

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress/egresstest"
)

// TestDialBlocksEncodings requests an internal address over https in
// every spelling (decimal, hex, octal, short forms, IPv4 inside IPv6).
// Untrusted, the dialer refuses each one before connecting and the
// listener sees no connection; trusted, the loopback spellings do reach the
// listener, which proves the refusal came from the dial-time check of the
// resolved address and not from a failed connect.
func TestDialBlocksEncodings(t *testing.T) {
	for _, tc := range []struct {
		host    string
		reaches bool // reaches the 127.0.0.1 listener when trusted
	}{
		{"2130706433", true},
		{"0x7f.1", true},
		{"017700000001", true},
		{"127.1", true},
		{"127.0.0.1", true},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"[::]", false},
		{"[::ffff:127.0.0.1]", true},
		{"[::ffff:169.254.169.254]", false},
		{"[64:ff9b::a9fe:a9fe]", false},
		{"[2002:a9fe:a9fe::]", false},
		{"[fe80::1%25eth0]", false},
		{"169.254.169.254", false},
		{"100.100.100.200", false},
		{"10.0.0.1", false},
		{"[fd00:ec2::254]", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			l := egresstest.NewListener(t)
			target := "https://" + tc.host + ":" + l.Port() + "/"
			_, err := Client(Policy{Timeout: 2 * time.Second}).Get(target)
			if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "blocked address") {
				t.Fatalf("GET %s: %v, want blocked address", target, err)
			}
			if opErr, ok := errors.AsType[*net.OpError](err); !ok || opErr.Op != "dial" {
				t.Fatalf("GET %s: %v, want a dial error", target, err)
			}
			if n := l.Accepted(); n != 0 {
				t.Fatalf("GET %s: listener accepted %d connections, want 0", target, n)
			}
			if !tc.reaches {
				return
			}
			host := strings.ReplaceAll(tc.host, "%25", "%")
			trusted := Policy{Trusted: []string{net.JoinHostPort(strings.Trim(host, "[]"), l.Port())}, Timeout: 2 * time.Second}
			_, err = Client(trusted).Get(target)
			if errors.Is(err, ErrBlocked) {
				t.Fatalf("GET %s trusted: %v", target, err)
			}
			if n := l.WaitAccepted(1); n != 1 {
				t.Fatalf("GET %s trusted: listener accepted %d connections, want 1", target, n)
			}
		})
	}
}

// TestLoopbackMode checks that AllowLoopbackHTTP opens loopback, and only
// loopback.
func TestLoopbackMode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	c := Client(Policy{AllowLoopbackHTTP: true})
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := c.Get(fmt.Sprintf("http://%s:%d/", host, port))
		if err != nil {
			t.Fatalf("GET via %s: %v", host, err)
		}
		resp.Body.Close()
	}
	for _, target := range []string{
		fmt.Sprintf("https://0.0.0.0:%d/", port),
		fmt.Sprintf("https://10.0.0.1:%d/", port),
		fmt.Sprintf("https://169.254.169.254:%d/", port),
		fmt.Sprintf("https://[64:ff9b::7f00:1]:%d/", port), // NAT64 leaves the host
	} {
		if _, err := c.Get(target); !errors.Is(err, ErrBlocked) {
			t.Errorf("GET %s in loopback mode: %v, want blocked", target, err)
		}
	}
	if _, err := Client(Policy{}).Get(srv.URL); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("GET %s without loopback mode: %v, want refused", srv.URL, err)
	}
}

// TestDialChecksResolvedAddress maps names to addresses with a test
// resolver: the check applies to what the name resolves to, at dial time.
func TestDialChecksResolvedAddress(t *testing.T) {
	l := egresstest.NewListener(t)
	lookup := func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		switch host {
		case "meta.test":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
		case "rebind.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		case "v6.test":
			return []netip.Addr{netip.MustParseAddr("fd00::1"), netip.MustParseAddr("::ffff:169.254.169.254")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	for _, tc := range []struct {
		url     string
		policy  Policy
		wantErr string
		reaches bool
	}{
		{"https://meta.test/", Policy{}, "blocked address 10.0.0.1", false},
		{"https://meta.test/", Policy{AllowLoopbackHTTP: true}, "blocked address 10.0.0.1", false},
		{"https://v6.test/", Policy{}, "blocked address fd00::1", false},
		{"https://rebind.test:" + l.Port() + "/", Policy{}, "blocked address 127.0.0.1", false},
		{"http://rebind.test:" + l.Port() + "/", Policy{AllowLoopbackHTTP: true}, "https required", false},
		{"https://rebind.test:" + l.Port() + "/", Policy{AllowLoopbackHTTP: true}, "", true},
		{"https://rebind.test:" + l.Port() + "/", Policy{Trusted: []string{"rebind.test:" + l.Port()}}, "", true},
		{"https://nowhere.test/", Policy{}, "no such host", false},
	} {
		before := l.Accepted()
		tc.policy.LookupNetIP = lookup
		tc.policy.Timeout = 2 * time.Second
		_, err := Client(tc.policy).Get(tc.url)
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("GET %s: %v, want %q", tc.url, err, tc.wantErr)
		}
		if tc.reaches {
			if errors.Is(err, ErrBlocked) || l.WaitAccepted(before+1) != before+1 {
				t.Errorf("GET %s: %v; the listener saw no connection", tc.url, err)
			}
		} else if n := l.Accepted(); n != before {
			t.Errorf("GET %s: the listener saw %d connections", tc.url, n-before)
		}
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	var followed atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, status := range []int{301, 302, 303, 307, 308} {
		mux.HandleFunc(fmt.Sprintf("/r%d", status), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", srv.URL+"/target?code=secret-code")
			w.WriteHeader(status)
		})
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, fmt.Sprintf("%s/r%d", srv.URL, status), strings.NewReader("code=x"))
			_, err := Client(Policy{AllowLoopbackHTTP: true}).Do(req)
			if !errors.Is(err, ErrRedirect) {
				t.Fatalf("%s %d: %v, want ErrRedirect", method, status, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprint(status)) || !strings.Contains(msg, srv.Listener.Addr().String()) {
				t.Errorf("%s %d: %q does not name the status and host", method, status, msg)
			}
			if strings.Contains(msg, "secret-code") || strings.Contains(msg, "/target") {
				t.Errorf("%s %d: %q leaks the redirect target", method, status, msg)
			}
		}
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("redirect target hit %d times", n)
	}
	// A 3xx without a Location is an ordinary answer, not a redirect.
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(304) })
	resp, err := Client(Policy{AllowLoopbackHTTP: true}).Get(srv.URL + "/304")
	if err != nil || resp.StatusCode != 304 {
		t.Fatalf("GET /304: %v, %v", resp, err)
	}
	resp.Body.Close()
	if err := refuseRedirect(httptest.NewRequest("GET", "https://as.example/x?y=z", nil), nil); !errors.Is(err, ErrRedirect) || strings.Contains(err.Error(), "y=z") {
		t.Fatalf("refuseRedirect = %v", err)
	}
}

func TestBodyCap(t *testing.T) {
	const limit = 1000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := limit
		switch r.URL.Path {
		case "/over":
			n = limit + 1
		case "/huge":
			n = 5 << 20
		case "/chunked":
			for range 100 {
				w.Write(bytes.Repeat([]byte("x"), 100))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Write(bytes.Repeat([]byte("x"), n))
	}))
	defer srv.Close()
	c := Client(Policy{AllowLoopbackHTTP: true, MaxBody: limit})
	for path, wantErr := range map[string]bool{"/exact": false, "/over": true, "/huge": true, "/chunked": true} {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !wantErr {
			if err != nil || len(body) != limit {
				t.Errorf("GET %s: %d bytes, %v; want %d bytes", path, len(body), err, limit)
			}
			continue
		}
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "response larger than 1000 bytes") {
			t.Errorf("GET %s: %v, want response larger than 1000 bytes", path, err)
		}
		if len(body) > limit {
			t.Errorf("GET %s: read %d bytes past the cap", path, len(body))
		}
	}
}

// TestNoDecompression sends a gzip bomb: the client neither asks for nor
// inflates compressed bodies, so the cap applies to the bytes on the wire
// and the caller sees them as they are.
func TestNoDecompression(t *testing.T) {
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 2*DefaultMaxBody))
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Errorf("request asked for Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/json")
		w.Write(bomb.Bytes())
	}))
	defer srv.Close()
	resp, err := Client(Policy{AllowLoopbackHTTP: true}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, bomb.Bytes()) {
		t.Fatalf("read %d bytes, %v; want the %d compressed bytes", len(body), err, bomb.Len())
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	start := time.Now()
	resp, err := Client(Policy{AllowLoopbackHTTP: true, Timeout: 200 * time.Millisecond}).Get(srv.URL)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("trickling body read to the end")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("took %v with a 200ms timeout", elapsed)
	}
}

func TestSchemeRulesOnRequests(t *testing.T) {
	c := Client(Policy{})
	for _, target := range []string{
		"http://as.example/",
		"ftp://as.example/",
		"file:///etc/passwd",
		"https://user:s3cr3t@as.example/",
	} {
		body := io.NopCloser(strings.NewReader("x"))
		req, err := http.NewRequest(http.MethodPost, target, body)
		if err != nil {
			continue // not even a request
		}
		if _, err := c.Do(req); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("POST %s: %v, want ErrNotAllowed", target, err)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("POST %s: %q leaks the password", target, err)
		}
	}
}

func TestTransportShape(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	c := Client(Policy{})
	tr := c.Transport.(*transport)
	if tr.base.Proxy != nil {
		t.Error("the transport uses a proxy")
	}
	if !tr.base.DisableCompression {
		t.Error("the transport decompresses")
	}
	if c.Timeout != DefaultTimeout || tr.policy.maxBody != DefaultMaxBody {
		t.Errorf("defaults: timeout %v, max body %d", c.Timeout, tr.policy.maxBody)
	}
	if _, err := tr.policy.dial(context.Background(), "unix", "/run/caddy-admin.sock"); err == nil {
		t.Error("dialled a unix socket")
	}
}
