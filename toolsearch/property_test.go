package toolsearch

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// words are what random tools are made of: few enough that tools share
// them, as real catalogs do.
var words = strings.Fields("create list get update delete search issue page file user message channel " +
	"event invoice table query branch comment project task report customer payment sheet row")

// randomDoc makes a tool of random words.
func randomDoc(r *rand.Rand) Doc {
	pick := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = words[r.IntN(len(words))]
		}
		return out
	}
	seps := []string{"_", "-", ".", ""}
	sep := seps[r.IntN(len(seps))]
	name := strings.Join(pick(1+r.IntN(3)), sep)
	if sep == "" {
		name += fmt.Sprint(r.IntN(100)) // camelCase-ish and distinct
	}
	return Doc{Name: name, Title: strings.Join(pick(r.IntN(4)), " "), Description: strings.Join(pick(r.IntN(20)), " ")}
}

// randomCatalog makes up to 10 connectors of up to 30 tools each.
func randomCatalog(r *rand.Rand) map[string][]Doc {
	cat := map[string][]Doc{}
	for i := range 1 + r.IntN(10) {
		docs := make([]Doc, r.IntN(31))
		for j := range docs {
			docs[j] = randomDoc(r)
		}
		cat[fmt.Sprintf("c%d", i)] = docs
	}
	return cat
}

// TestSearchNeverShowsRefused is the property that matters: across random
// catalogs and random allowed sets, every hit is allowed, no search
// answers more than its limit, and a query of an allowed tool's exact
// name (bare or prefixed) finds it, while a refused tool's name never
// does.
func TestSearchNeverShowsRefused(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 14))
		cat := randomCatalog(r)
		ix := New()
		for c, docs := range cat {
			ix.Replace(c, docs)
		}
		allowedSet := map[string]bool{}
		for c, docs := range cat {
			for _, d := range docs {
				if r.IntN(2) == 0 {
					allowedSet[c+"/"+d.Name] = true
				}
			}
		}
		allowed := func(c, tool string) bool { return allowedSet[c+"/"+tool] }
		for range 20 {
			q := randomQuery(r)
			limit := 1 + r.IntN(10)
			hits, err := ix.Search(q, limit, allowed)
			if err != nil && err != ErrEmptyQuery {
				t.Fatalf("seed %d: %q: %v", seed, q, err)
			}
			if len(hits) > limit {
				t.Fatalf("seed %d: %q: %d hits over the limit of %d", seed, q, len(hits), limit)
			}
			for _, h := range hits {
				if !allowedSet[h.Connector+"/"+h.Name] {
					t.Fatalf("seed %d: %q: refused tool %s/%s is a hit", seed, q, h.Connector, h.Name)
				}
			}
		}
		for c, docs := range cat {
			for _, d := range docs {
				for _, q := range []string{d.Name, c + "_" + d.Name} {
					hits, err := ix.Search(q, 50, allowed)
					if err != nil {
						t.Fatalf("seed %d: %q: %v", seed, q, err)
					}
					if found := hasHit(hits, c, d.Name); found != allowedSet[c+"/"+d.Name] {
						t.Fatalf("seed %d: exact query %q finds %s/%s: %v, allowed: %v", seed, q, c, d.Name, found, allowedSet[c+"/"+d.Name])
					}
				}
			}
		}
	}
}

// randomQuery makes up a query of one to four random words.
func randomQuery(r *rand.Rand) string {
	out := make([]string, 1+r.IntN(4))
	for i := range out {
		out[i] = words[r.IntN(len(words))]
	}
	return strings.Join(out, " ")
}

// TestIncrementalEqualsFresh: after a random run of Replace and Remove, the
// index answers every query with the same hits and the same scores as an
// index built afresh from what is left.
func TestIncrementalEqualsFresh(t *testing.T) {
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 41))
		ix := New()
		final := map[string][]Doc{}
		for range 30 {
			c := fmt.Sprintf("c%d", r.IntN(6))
			if r.IntN(4) == 0 {
				ix.Remove(c)
				delete(final, c)
				continue
			}
			docs := randomCatalog(r)["c0"]
			ix.Replace(c, docs)
			final[c] = docs
			if len(docs) == 0 {
				delete(final, c)
			}
		}
		fresh := New()
		for c, docs := range final {
			fresh.Replace(c, docs)
		}
		if ix.Len() != fresh.Len() {
			t.Fatalf("seed %d: %d documents, fresh %d", seed, ix.Len(), fresh.Len())
		}
		for range 30 {
			q := randomQuery(r)
			got, _ := ix.Search(q, 1000, nil)
			want, _ := fresh.Search(q, 1000, nil)
			if fmt.Sprint(names(got)) != fmt.Sprint(names(want)) {
				t.Fatalf("seed %d: %q:\nincremental %v\nfresh       %v", seed, q, names(got), names(want))
			}
			for i := range got {
				if got[i].Score != want[i].Score {
					t.Fatalf("seed %d: %q: score %v, fresh %v", seed, q, got[i].Score, want[i].Score)
				}
			}
		}
	}
}
