package toolsearch

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTokens(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"create_pull_request", []string{"creat", "pull", "request"}},
		{"notion-create-pages", []string{"notion", "creat", "page"}},
		{"listIssues", []string{"list", "issu"}},
		{"getHTTPServerStatus", []string{"get", "http", "server", "status"}},
		{"drive.files.list", []string{"driv", "file", "list"}},
		{"repos/{owner}/branches", []string{"repo", "owner", "branch"}},
		{"s3Bucket v2API", []string{"s3", "bucket", "v2", "api"}},
		{"Überweisung_ANLEGEN", []string{"überweisung", "anlegen"}},
		{"a\xffb", []string{"a", "b"}},
		{"  ", nil},
	} {
		if got := tokens(nil, c.in); !slices.Equal(got, c.want) {
			t.Errorf("tokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestStemJoinsInflections(t *testing.T) {
	for _, group := range [][]string{
		{"issue", "issues"},
		{"create", "creating", "created", "creates"},
		{"query", "queries"},
		{"branch", "branches"},
		{"list", "listing", "lists"},
		{"message", "messages"},
	} {
		for _, w := range group[1:] {
			if stem(w) != stem(group[0]) {
				t.Errorf("stem(%q) = %q, stem(%q) = %q: want the same", w, stem(w), group[0], stem(group[0]))
			}
		}
	}
}

// TestQueryBounds: a query over MaxQueryBytes is refused, one of only
// punctuation says it has no word, and one of thousands of terms is cut
// to MaxQueryTerms distinct ones.
func TestQueryBounds(t *testing.T) {
	ix := newCorpus()
	if _, err := ix.Search(strings.Repeat("a", MaxQueryBytes+1), 10, nil); !errors.Is(err, ErrQueryTooLong) {
		t.Errorf("long query: err = %v, want ErrQueryTooLong", err)
	}
	if _, err := ix.Search("?? -- //", 10, nil); !errors.Is(err, ErrEmptyQuery) {
		t.Errorf("punctuation: err = %v, want ErrEmptyQuery", err)
	}
	var many []string
	for i := range 300 {
		many = append(many, string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	terms, err := queryTerms(strings.Join(many, " "))
	if err != nil || len(terms) != MaxQueryTerms {
		t.Errorf("many terms: %d terms, err %v; want %d", len(terms), err, MaxQueryTerms)
	}
	if hits, err := ix.Search("create issue", 0, nil); err != nil || hits != nil {
		t.Errorf("limit 0: %v, %v; want nothing", hits, err)
	}
}

// TestSearchWhileReplacing runs searches alongside replacements, for the
// race detector.
func TestSearchWhileReplacing(t *testing.T) {
	ix := newCorpus()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := ix.Search("create issue in github", 5, func(c, _ string) bool { return c != "jira" }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 200 {
		c := "github"
		if i%2 == 1 {
			c = "jira"
		}
		ix.Replace(c, corpus[c][:i%len(corpus[c])])
	}
	wg.Wait()
}

// FuzzQuery: no query panics, and every term is lowercased, non-empty and
// within maxTokenLen; every hit of a filtered search is allowed.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{"create issue", "getHTTPServer", "a\xffb", "ÉCOLE_élève", strings.Repeat("x_", 600), "github_create_issue"} {
		f.Add(q)
	}
	ix := newCorpus()
	f.Fuzz(func(t *testing.T, q string) {
		for _, term := range tokens(nil, q) {
			if term == "" || len(term) > maxTokenLen || !utf8.ValidString(term) {
				t.Fatalf("bad term %q of %q", term, q)
			}
			if strings.IndexFunc(term, unicode.IsUpper) >= 0 && strings.ToLower(term) == term {
				continue // a rune with no lower case of its own
			}
			if strings.IndexFunc(term, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
				t.Fatalf("term %q of %q holds a separator", term, q)
			}
		}
		hits, err := ix.Search(q, 5, func(c, _ string) bool { return c != "github" })
		if err == nil && len(hits) > 5 {
			t.Fatalf("%d hits over the limit", len(hits))
		}
		for _, h := range hits {
			if h.Connector == "github" {
				t.Fatalf("%q: refused %s/%s is a hit", q, h.Connector, h.Name)
			}
		}
	})
}
