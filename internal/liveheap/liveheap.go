// Package liveheap measures the live Go heap, for tests that bound what a
// structure holds.
package liveheap

import "runtime"

// Bytes returns the bytes of live heap after a collection.
func Bytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
