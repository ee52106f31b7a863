package mcpmux

// SearchIndex returns how many documents m's tool search index holds and
// how many times it has been written: what a test reads to check that a
// search never writes the index and that a list leaving the cache takes
// its tools out of it.
func SearchIndex(m *Mux) (docs int, writes uint64) {
	return m.search.index.Len(), m.search.index.Writes()
}
