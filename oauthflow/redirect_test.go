package oauthflow

import (
	"context"
	"errors"
	"testing"
)

func TestRedirectURL(t *testing.T) {
	// No open redirect. Allowed: the public URL's origin and
	// https://app.example.test.
	good := []string{
		"",
		"https://gw.example.test/connectors",
		"https://gw.example.test:443/x?y=1#z",
		"https://GW.example.test/",
		"https://app.example.test",
		"https://app.example.test/done?a=b",
	}
	bad := []string{
		"javascript:alert(1)",
		"JavaScript://gw.example.test/%0aalert(1)",
		"data:text/html,<script>alert(1)</script>",
		"//evil.test",
		"///evil.test",
		"/\\evil.test",
		"/relative",
		"\\\\evil.test",
		"https:evil.test",
		"https:/evil.test",
		"https://gw.example.test@evil.test",
		"https://evil.test@gw.example.test",
		"https://gw.example.test.evil.test",
		"https://gw.example.test./",
		"https://gw.example.test:8443/",
		"http://gw.example.test/",
		"https://evil.test/https://gw.example.test",
		"https://gw.example.test\r\nLocation: https://evil.test",
		"https://gw.example.test/%0d%0a\r\n",
		"https://gw.example.test /",
		"https://gw.example.test\t/",
		"https://gw.exаmple.test/", // Cyrillic а
		"https://xn--gw-example-test.evil/",
		"https://gw%2eexample%2etest/",
		"https://[::1]/",
		"ftp://gw.example.test/",
		"https://gw.example.test\\@evil.test",
		"https://app.example.test:444",
		"https://sub.app.example.test",
		"https://app.example.test" + string(make([]byte, 3000)),
	}
	h := newHarness(t, nil)
	for _, r := range good {
		if err := h.m.checkRedirect(r); err != nil {
			t.Errorf("%q refused: %v", r, err)
		}
	}
	for _, r := range bad {
		if err := h.m.checkRedirect(r); !errors.Is(err, ErrBadRedirect) {
			t.Errorf("%q allowed", r)
		}
	}
	if _, err := h.m.Start(context.Background(), "notion", "alice", "//evil.test"); !errors.Is(err, ErrBadRedirect) {
		t.Errorf("Start with a bad redirect: %v", err)
	}
	if h.as.discovers.Load() != 0 {
		t.Error("a bad redirect reached discovery")
	}
}

func TestAllowedRedirectsOption(t *testing.T) {
	for _, o := range []string{"https://a.test/path", "https://a.test?x", "javascript:x", "https://u@a.test", "a.test"} {
		m, err := New(Options{Store: newMemStore(nil), PublicURL: publicURL, StateKey: make([]byte, 32), AllowedRedirects: []string{o}}, nil)
		if err == nil {
			m.Close()
			t.Errorf("allowed redirect %q accepted", o)
		}
	}
}
