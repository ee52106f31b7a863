package grants

import (
	"strings"
	"testing"
)

// TestSplitListLines: a list pasted one item per line, or with carriage
// returns, splits as one written with commas or spaces.
func TestSplitListLines(t *testing.T) {
	tests := map[string]string{
		"read\nwrite":            "read|write",
		"read\r\nwrite\n":        "read|write",
		"a,\n b\t\nc":            "a|b|c",
		"offline_access\vopenid": "offline_access|openid",
	}
	for in, want := range tests {
		if got := strings.Join(SplitList(in), "|"); got != want {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}
