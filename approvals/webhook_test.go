package approvals

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWebhookNoticeHoldsNoArguments(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer srv.Close()
	hook, err := NewWebhook(srv.URL+"/hook", func(id string) string { return "https://gw.example.com/approvals/" + id }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := newService(t, Options{OnRequest: hook.Send})
	_, r, err := s.Check(context.Background(), bob, json.RawMessage(`{"secret":"hunter2"}`))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-got:
		var n Notice
		if err := json.Unmarshal(body, &n); err != nil || n.ID != r.ID || n.Caller != "bob" || n.Tool != "transfer" ||
			n.URL != "https://gw.example.com/approvals/"+r.ID || n.Expires.IsZero() {
			t.Errorf("notice %s (%v)", body, err)
		}
		if strings.Contains(string(body), "hunter2") || strings.Contains(string(body), r.ArgsSHA256) {
			t.Errorf("notice carries the arguments or their hash: %s", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice")
	}
}

func TestWebhookNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	hook, _ := NewWebhook(srv.URL, func(string) string { return "" }, nil, nil)
	start := time.Now()
	for range 3 * maxInFlight {
		hook.Send(Request{ID: "x"})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Send blocked for %v on a stuck webhook", d)
	}
}

func TestCheckWebhookURL(t *testing.T) {
	for _, ok := range []string{"https://hooks.example.com/x", "http://127.0.0.1:9/h"} {
		if CheckWebhookURL(ok) != nil {
			t.Errorf("%s refused", ok)
		}
	}
	for _, bad := range []string{"", "ftp://x", "/relative", "https://", "javascript:alert(1)"} {
		if CheckWebhookURL(bad) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
