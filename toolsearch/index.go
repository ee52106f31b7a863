// Package toolsearch ranks a catalog of tools against a free-text query
// with BM25F over their names, titles and descriptions. The index is kept
// per connector, so that one connector's new tool list replaces its own
// postings and nothing else; and a search filters with the caller's grants
// before it ranks, so that a tool the caller may not call is never a hit.
// It knows nothing of MCP transports or of Caddy.
package toolsearch

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
)

// Doc is one tool as the index holds it.
type Doc struct {
	// Connector is the id of the tool's connector.
	Connector string
	// Name is the tool's name at its connector.
	Name string
	// Title is the tool's display title, if any.
	Title string
	// Description says what the tool does.
	Description string
	// InputSchema is the tool's input schema, kept for answers; it is
	// not searched.
	InputSchema json.RawMessage
	// Variant tells apart two definitions of one name at one connector,
	// as two users of a per-user connector may each be listed their own
	// (a digest of the definition, say); it is not searched. Docs of one
	// Name and Variant are one; docs of one Name and two Variants are
	// two, and a filter that admits both finds both.
	Variant string
}

// Hit is one search result.
type Hit struct {
	Doc
	// Score is the tool's BM25F score. It depends on the whole corpus,
	// granted or not, so it is for ordering only: it must not reach a
	// caller, to whom it would hint at tools it may not see.
	Score float64
}

// maxFieldBytes bounds how much of one field is indexed. A description is
// written by the upstream, which the gateway does not trust to be small;
// what matters for ranking is nearly always at its start.
const maxFieldBytes = 4096

// The fields, in the order of their weights.
const (
	fieldName = iota // the connector id and the tool's name
	fieldTitle
	fieldDescription
	fieldCount
)

// posting is one document's occurrences of one term.
type posting struct {
	id uint32
	tf [fieldCount]uint16
}

// record is one document of the index.
type record struct {
	doc  Doc
	lens [fieldCount]uint32
	// exact is the name as an exact query matches it.
	exact string
	live  bool
}

// shard is one connector's documents and their postings: what Replace
// swaps and Remove drops, without touching another connector's.
type shard struct {
	connector string
	ids       []uint32
	postings  map[string][]posting
	// exact finds documents by whole name, lowercased: a query that is
	// a tool's exact name (bare or prefixed) ranks that tool first.
	exact map[string][]uint32
}

// Index is a searchable catalog of tools.
//
// It is guarded by a sync.RWMutex rather than copied on write: searches are
// many and run in parallel under the read lock, while writes are rare (a
// connector's tool list changed) and touch one shard and the shared
// statistics in place. Copy on write would copy the term statistics of
// the whole corpus (tens of thousands of terms at 10,000 tools) for every
// connector's update; a write here costs what the connector's own tools
// cost. Go's RWMutex lets no new reader in while a writer waits, so a
// stream of searches cannot starve an update.
type Index struct {
	mu     sync.RWMutex
	shards map[string]*shard
	docs   []record
	free   []uint32
	// df counts the documents holding each term, over every shard; total
	// sums each field's length, for its average; n counts live documents.
	df    map[string]int32
	total [fieldCount]int64
	n     int
	// scratch holds the per-search score arrays, reused.
	scratch sync.Pool
	// writes counts Replace and Remove calls.
	writes atomic.Uint64
}

// New returns an empty index.
func New() *Index {
	return &Index{shards: map[string]*shard{}, df: map[string]int32{}}
}

// Len returns how many documents the index holds.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// Writes returns how many times the index has been written (Replace and
// Remove), so that a caller can tell that a path, a search's say, never
// writes it.
func (ix *Index) Writes() uint64 {
	return ix.writes.Load()
}

// Replace makes docs the whole of connector's documents, replacing any it
// had. A doc's Connector is set to connector; a name and variant given
// twice keep their first doc, as the gateway's lists do.
func (ix *Index) Replace(connector string, docs []Doc) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.writes.Add(1)
	ix.remove(connector)
	if len(docs) == 0 {
		return
	}
	s := &shard{connector: connector, postings: map[string][]posting{}, exact: map[string][]uint32{}}
	type key struct{ name, variant string }
	seen := make(map[key]bool, len(docs))
	var buf []string
	for _, d := range docs {
		if seen[key{d.Name, d.Variant}] {
			continue
		}
		seen[key{d.Name, d.Variant}] = true
		d.Connector = connector
		buf = ix.add(s, d, buf)
	}
	ix.shards[connector] = s
}

// Remove drops every document of connector.
func (ix *Index) Remove(connector string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.writes.Add(1)
	ix.remove(connector)
}

// remove drops connector's shard and takes its documents out of the
// statistics. The caller holds the write lock.
func (ix *Index) remove(connector string) {
	s, ok := ix.shards[connector]
	if !ok {
		return
	}
	for term, ps := range s.postings {
		if ix.df[term] -= int32(len(ps)); ix.df[term] <= 0 {
			delete(ix.df, term)
		}
	}
	for _, id := range s.ids {
		r := &ix.docs[id]
		for f := range fieldCount {
			ix.total[f] -= int64(r.lens[f])
		}
		*r = record{}
		ix.free = append(ix.free, id)
	}
	ix.n -= len(s.ids)
	delete(ix.shards, connector)
}

// add indexes d into s, with buf as scratch for its terms, which it
// returns for reuse. The caller holds the write lock.
func (ix *Index) add(s *shard, d Doc, buf []string) []string {
	id := ix.slot()
	r := record{doc: d, exact: strings.ToLower(d.Name), live: true}
	tf := map[string]*[fieldCount]uint16{}
	for f, text := range [fieldCount][]string{{d.Connector, d.Name}, {d.Title}, {d.Description}} {
		buf = buf[:0]
		for _, t := range text {
			buf = tokens(buf, cut(t, maxFieldBytes))
		}
		r.lens[f] = uint32(len(buf))
		ix.total[f] += int64(len(buf))
		for _, term := range buf {
			c := tf[term]
			if c == nil {
				c = new([fieldCount]uint16)
				tf[term] = c
			}
			if c[f] < ^uint16(0) {
				c[f]++
			}
		}
	}
	for term, c := range tf {
		s.postings[term] = append(s.postings[term], posting{id, *c})
		ix.df[term]++
	}
	s.exact[r.exact] = append(s.exact[r.exact], id)
	ix.docs[id] = r
	s.ids = append(s.ids, id)
	ix.n++
	return buf
}

// slot returns a free document id, growing the table when none is free.
func (ix *Index) slot() uint32 {
	if n := len(ix.free); n > 0 {
		id := ix.free[n-1]
		ix.free = ix.free[:n-1]
		return id
	}
	ix.docs = append(ix.docs, record{})
	return uint32(len(ix.docs) - 1)
}
