package toolsearch

import (
	"cmp"
	"container/heap"
	"errors"
	"math"
	"slices"
	"strings"
)

// Bounds on a query, so that what one search costs is bounded whatever an
// agent sends: a query of more than MaxQueryBytes is refused, and of its
// distinct terms only the first MaxQueryTerms are searched (the rest are
// dropped, which the caller may say).
const (
	MaxQueryBytes = 1024
	MaxQueryTerms = 32
)

// Errors of Search.
var (
	// ErrQueryTooLong: the query is over MaxQueryBytes.
	ErrQueryTooLong = errors.New("the query is longer than 1024 bytes")
	// ErrEmptyQuery: the query holds no letter or digit.
	ErrEmptyQuery = errors.New("the query holds no word to search for")
)

// The ranking's parameters: BM25's k1 and b, the weight of each field (a
// word of the name says more of what a tool does than one of its
// description), and the bonus of a query that is a tool's exact name.
const (
	k1         = 1.2
	b          = 0.75
	exactBonus = 1e4
)

var weights = [fieldCount]float64{3, 2, 1}

// Search returns the documents that best match query, best first, at most
// limit of them. allowed is asked of each candidate before it is scored,
// so a document it refuses is never a hit and never takes a place of the
// limit; it runs under the index's read lock and must not call the
// index. Ties go to the connector and name that sort first, so that the
// same query over the same documents always answers the same.
func (ix *Index) Search(query string, limit int, allowed func(connector, tool string) bool) ([]Hit, error) {
	var filter func(*Doc) bool
	if allowed != nil {
		filter = func(d *Doc) bool { return allowed(d.Connector, d.Name) }
	}
	return ix.SearchDocs(query, limit, filter)
}

// SearchDocs is Search with a filter that sees the whole document, its
// Variant included: for a caller who may find one definition of a name
// and not another.
func (ix *Index) SearchDocs(query string, limit int, allowed func(*Doc) bool) ([]Hit, error) {
	terms, err := queryTerms(query)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	sc := ix.getScratch()
	defer ix.scratch.Put(sc)
	for _, t := range terms {
		ix.scoreTerm(sc, t, allowed)
	}
	ix.scoreExact(sc, strings.ToLower(strings.TrimSpace(query)), allowed)
	return ix.top(sc, limit), nil
}

// queryTerms returns the distinct terms of query, at most MaxQueryTerms.
func queryTerms(query string) ([]string, error) {
	if len(query) > MaxQueryBytes {
		return nil, ErrQueryTooLong
	}
	all := tokens(nil, query)
	terms := all[:0]
	for _, t := range all {
		if len(terms) == MaxQueryTerms {
			break
		}
		if !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	}
	if len(terms) == 0 {
		return nil, ErrEmptyQuery
	}
	return terms, nil
}

// scoreTerm adds term's share of the score to every allowed document
// holding it (BM25F: the fields' weighted, length-normalised frequencies
// summed, then saturated once).
func (ix *Index) scoreTerm(sc *scratch, term string, allowed func(*Doc) bool) {
	df := ix.df[term]
	if df == 0 {
		return
	}
	n := float64(ix.n)
	idf := math.Log(1 + (n-float64(df)+0.5)/(float64(df)+0.5))
	var avg [fieldCount]float64
	for f := range fieldCount {
		avg[f] = float64(ix.total[f]) / n
	}
	for _, s := range ix.shards {
		for _, p := range s.postings[term] {
			if !ix.admit(sc, p.id, allowed) {
				continue
			}
			r := &ix.docs[p.id]
			tf := 0.0
			for f := range fieldCount {
				if p.tf[f] == 0 {
					continue
				}
				norm := 1 - b + b*float64(r.lens[f])/avg[f]
				tf += weights[f] * float64(p.tf[f]) / norm
			}
			sc.score[p.id] += idf * tf / (k1 + tf)
		}
	}
}

// scoreExact ranks first the allowed documents whose name is q, bare or
// prefixed with its connector's id and a separator ("github_create_issue"
// and "github__create_issue" both name github's create_issue).
func (ix *Index) scoreExact(sc *scratch, q string, allowed func(*Doc) bool) {
	for _, s := range ix.shards {
		ids := s.exact[q]
		if rest, ok := strings.CutPrefix(q, s.connector+"_"); ok {
			ids = slices.Concat(ids, s.exact[rest], s.exact[strings.TrimPrefix(rest, "_")])
		}
		for i, id := range ids {
			// A name found twice (a tool named both ways) counts once.
			if slices.Contains(ids[:i], id) || !ix.admit(sc, id, allowed) {
				continue
			}
			sc.score[id] += exactBonus
		}
	}
}

// admit reports whether the document id may be a hit, asking allowed once
// per search, and marks it as one to rank.
func (ix *Index) admit(sc *scratch, id uint32, allowed func(*Doc) bool) bool {
	switch sc.state[id] {
	case stateAllowed:
		return true
	case stateDenied:
		return false
	}
	d := &ix.docs[id].doc
	sc.visited = append(sc.visited, id)
	if allowed != nil && !allowed(d) {
		sc.state[id] = stateDenied
		return false
	}
	sc.state[id] = stateAllowed
	return true
}

// top returns the limit best of the documents sc scored, best first, and
// clears sc for its next search.
func (ix *Index) top(sc *scratch, limit int) []Hit {
	// Sized once: a heap grown by appends would copy its hits at each
	// doubling.
	hits := make(hitHeap, 0, min(limit, len(sc.visited)))
	h := &hits
	for _, id := range sc.visited {
		if sc.state[id] == stateAllowed {
			hit := Hit{Doc: ix.docs[id].doc, Score: sc.score[id]}
			if h.Len() < limit {
				heap.Push(h, hit)
			} else if better(hit, (*h)[0]) {
				(*h)[0] = hit
				heap.Fix(h, 0)
			}
		}
		sc.score[id], sc.state[id] = 0, stateUnknown
	}
	sc.visited = sc.visited[:0]
	out := []Hit(*h)
	slices.SortFunc(out, func(a, b Hit) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	return out
}

// better reports whether a ranks before b.
func better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	if c := cmp.Compare(a.Connector, b.Connector); c != 0 {
		return c < 0
	}
	return a.Name < b.Name
}

// hitHeap keeps the best hits found so far with the worst on top.
type hitHeap []Hit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// The states of a document during one search.
const (
	stateUnknown = iota // not yet asked
	stateAllowed
	stateDenied
)

// scratch is one search's working memory, indexed by document id: reused
// across searches, and left all zero by each.
type scratch struct {
	score   []float64
	state   []uint8
	visited []uint32
}

// getScratch returns scratch arrays as long as the document table. The
// caller holds the read lock, under which the table does not grow.
func (ix *Index) getScratch() *scratch {
	sc, _ := ix.scratch.Get().(*scratch)
	if sc == nil {
		sc = &scratch{}
	}
	if n := len(ix.docs); len(sc.score) < n {
		sc.score = make([]float64, n)
		sc.state = make([]uint8, n)
	}
	return sc
}
