package testas

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Authorize plays the browser at the server for a client under test: it
// follows authURL with login_hint=account, logs in and consents, and
// returns the URL the server redirects to under callbackPrefix, without
// following it. The test fails if the redirects lead elsewhere.
func Authorize(t testing.TB, authURL, account, callbackPrefix string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callbackPrefix) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := client.Get(authURL + "&login_hint=" + url.QueryEscape(account))
	if err != nil {
		t.Fatalf("testas: authorizing: %v", err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, callbackPrefix) {
		t.Fatalf("testas: the server sent the browser to %q (%d), not under %s", callback, resp.StatusCode, callbackPrefix)
	}
	return callback
}
