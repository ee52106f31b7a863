package toolsearch

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// vocabulary is what the benchmark's tools are written in: a few hundred
// words, some common and some rare, as real descriptions are.
var vocabulary = strings.Fields(`create list get update delete search find read write open close merge
	issue pull request branch commit file folder page database table row column query report invoice
	payment customer refund charge subscription event calendar meeting attendee message channel thread
	reaction user group team project task sprint board ticket comment label milestone release tag
	deployment pipeline job build artifact log metric alert incident service cluster node pod secret
	config variable document sheet cell range chart slide image video upload download share permission
	role token key account organization workspace domain record zone certificate backup snapshot volume
	the a of to in for with by from on at and or its their each every one new existing current`)

// catalog10k makes 10,000 tools over 100 connectors of 100 tools each.
func catalog10k() map[string][]Doc {
	r := rand.New(rand.NewPCG(1, 2))
	words := func(n int) string {
		w := make([]string, n)
		for i := range w {
			// Squared: early words are common, late ones rare.
			w[i] = vocabulary[int(float64(len(vocabulary))*r.Float64()*r.Float64())]
		}
		return strings.Join(w, " ")
	}
	cat := map[string][]Doc{}
	for c := range 100 {
		docs := make([]Doc, 100)
		for i := range docs {
			docs[i] = Doc{
				Name:        strings.ReplaceAll(words(2+r.IntN(2)), " ", "_") + fmt.Sprint(i),
				Title:       words(2 + r.IntN(3)),
				Description: words(15 + r.IntN(30)),
			}
		}
		cat[fmt.Sprintf("conn-%02d", c)] = docs
	}
	return cat
}

// build10k indexes catalog.
func build10k(cat map[string][]Doc) *Index {
	ix := New()
	for c, docs := range cat {
		ix.Replace(c, docs)
	}
	return ix
}

// benchQueries are queries of one to six words.
func benchQueries() []string {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]string, 256)
	for i := range out {
		w := make([]string, 1+r.IntN(6))
		for j := range w {
			w[j] = vocabulary[r.IntN(len(vocabulary))]
		}
		out[i] = strings.Join(w, " ")
	}
	return out
}

// halfGranted allows every tool of the even connectors, as a caller granted
// half the catalog.
func halfGranted(c, _ string) bool { return (c[len(c)-1]-'0')%2 == 0 }

// BenchmarkSearch10k searches 10,000 tools for the 10 best of half of
// them, on one core, and reports the 99th percentile of a query's time
// (p99-ns/op) besides the mean.
func BenchmarkSearch10k(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ix := build10k(catalog10k())
	queries := benchQueries()
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := ix.Search(queries[i%len(queries)], 10, halfGranted); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns/op")
}

// BenchmarkBuild10k builds an index of 10,000 tools from nothing.
func BenchmarkBuild10k(b *testing.B) {
	cat := catalog10k()
	b.ReportAllocs()
	for b.Loop() {
		build10k(cat)
	}
}

// BenchmarkReplaceOne replaces one connector's 100 tools in an index of
// 10,000: what a catalog change costs, against BenchmarkBuild10k.
func BenchmarkReplaceOne(b *testing.B) {
	cat := catalog10k()
	ix := build10k(cat)
	alt := catalog10k()["conn-01"]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		docs := cat["conn-07"]
		if i%2 == 1 {
			docs = alt
		}
		ix.Replace("conn-07", docs)
		i++
	}
}
