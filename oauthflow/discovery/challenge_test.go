package discovery

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  string
		want    *Challenge
		wantErr string
	}{
		{
			name:   "resource metadata",
			header: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`,
			want:   &Challenge{ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		},
		{
			name:   "all parameters",
			header: `Bearer realm="mcp", error="insufficient_scope", scope="files:read files:write", resource_metadata="https://x.example/prm"`,
			want:   &Challenge{ResourceMetadata: "https://x.example/prm", Scope: []string{"files:read", "files:write"}, Error: "insufficient_scope"},
		},
		{
			name:   "case-insensitive names",
			header: `BEARER Resource_Metadata="https://x.example/prm", SCOPE=read`,
			want:   &Challenge{ResourceMetadata: "https://x.example/prm", Scope: []string{"read"}},
		},
		{
			name:   "token values and spaces around equals",
			header: `Bearer error = invalid_token ,scope= "a  b "`,
			want:   &Challenge{Error: "invalid_token", Scope: []string{"a", "b"}},
		},
		{
			name:   "escapes",
			header: `Bearer realm="a \"quoted\" \\ realm", scope="x\y"`,
			want:   &Challenge{Scope: []string{"xy"}},
		},
		{
			name:   "after basic with params",
			header: `Basic realm="simple", charset="UTF-8", Bearer scope="s1", error="invalid_token"`,
			want:   &Challenge{Scope: []string{"s1"}, Error: "invalid_token"},
		},
		{
			name:   "after token68",
			header: `Negotiate a87421000492aa874209af8bc028==, Bearer scope=s`,
			want:   &Challenge{Scope: []string{"s"}},
		},
		{
			name:   "after bare scheme",
			header: `Basic, Bearer scope=s`,
			want:   &Challenge{Scope: []string{"s"}},
		},
		{
			name:   "before another challenge",
			header: `Bearer scope="a", DPoP algs="ES256", Basic realm=x`,
			want:   &Challenge{Scope: []string{"a"}},
		},
		{
			name:   "first bearer wins",
			header: `Bearer scope=first, Bearer scope=second`,
			want:   &Challenge{Scope: []string{"first"}},
		},
		{
			name:   "bare bearer",
			header: `Bearer`,
			want:   &Challenge{},
		},
		{
			name:   "empty list elements",
			header: ` , ,Bearer scope=a,, error=e ,`,
			want:   &Challenge{Scope: []string{"a"}, Error: "e"},
		},
		{
			name:   "unknown parameters ignored",
			header: `Bearer foo=bar, resource_metadata="https://x.example/prm"`,
			want:   &Challenge{ResourceMetadata: "https://x.example/prm"},
		},
		{name: "empty", header: ``, wantErr: "no Bearer challenge"},
		{name: "basic only", header: `Basic realm="x"`, wantErr: "no Bearer challenge"},
		{name: "bearer prefix", header: `Bearerx scope=a`, wantErr: "no Bearer challenge"},
		{name: "duplicate parameter", header: `Bearer scope=a, scope=b`, wantErr: "repeated"},
		{name: "duplicate parameter case", header: `Bearer scope=a, SCOPE=b`, wantErr: "repeated"},
		{name: "unterminated", header: `Bearer scope="a`, wantErr: "unterminated"},
		{name: "control character", header: "Bearer scope=\"a\x01\"", wantErr: "control character"},
		{name: "newline", header: "Bearer scope=\"a\nb\"", wantErr: "control character"},
		{name: "bad escape", header: "Bearer scope=\"a\\\x01\"", wantErr: "bad escape"},
		{name: "missing comma", header: `Bearer scope=a error=b`, wantErr: "expected ','"},
		{name: "no space after scheme", header: `Bearer"x"`, wantErr: "space"},
		{name: "invalid scope", header: `Bearer scope="a\"b"`, wantErr: "invalid scope"},
		{name: "leading garbage", header: `=Bearer`, wantErr: "auth-scheme"},
		{name: "too long", header: "Bearer scope=\"" + strings.Repeat("a", maxChallengeLen) + "\"", wantErr: "longer than"},
		{name: "too many scopes", header: "Bearer scope=\"" + strings.Repeat("a ", maxScopes+1) + "\"", wantErr: "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChallenge(tc.header)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseChallenge(%q) = %+v, %v; want error %q", tc.header, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChallenge(%q): %v", tc.header, err)
			}
			if got.ResourceMetadata != tc.want.ResourceMetadata || got.Error != tc.want.Error || !slices.Equal(got.Scope, tc.want.Scope) {
				t.Fatalf("ParseChallenge(%q) = %+v, want %+v", tc.header, got, tc.want)
			}
		})
	}
	if _, err := ParseChallenge(`Basic realm=x`); !errors.Is(err, ErrNoChallenge) {
		t.Fatalf("no Bearer challenge: %v, want ErrNoChallenge", err)
	}
}

func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://x.example/prm", scope="a b"`,
		`Basic realm="x", Bearer error=invalid_token`,
		`Negotiate abc==, Bearer`,
		`Bearer realm="a \"b\" \\", scope=x`,
		`, ,Bearer scope=a,,`,
		`Bearer scope="a`,
		`DPoP algs="ES256 PS256", Bearer scope=s`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		ch, err := ParseChallenge(header)
		if err != nil {
			if ch != nil {
				t.Fatalf("ParseChallenge(%q) returned both %+v and %v", header, ch, err)
			}
			return
		}
		if len(ch.Scope) > maxScopes {
			t.Fatalf("ParseChallenge(%q): %d scopes", header, len(ch.Scope))
		}
		for _, s := range ch.Scope {
			if !ValidScope(s) {
				t.Fatalf("ParseChallenge(%q): invalid scope %q", header, s)
			}
		}
		if !strings.Contains(strings.ToLower(header), "bearer") {
			t.Fatalf("ParseChallenge(%q) found a Bearer challenge", header)
		}
	})
}
