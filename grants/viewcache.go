package grants

import (
	"encoding/binary"
	"sync"
)

// maxCachedViews bounds a Policy's view cache, so that a stream of
// distinct callers (each agent user, each group set) cannot grow it
// without end; past it the cache starts over.
const maxCachedViews = 4096

// viewCache keeps the views a Policy made, by caller. A Policy never
// changes, so a view it made holds for as long as the Policy does: a
// reload or a grant added at run time makes a new Policy, with an empty
// cache, and no view of the old rules survives it.
type viewCache struct {
	mu    sync.RWMutex
	views map[string]*View
}

// get returns the view cached under key, or nil.
func (c *viewCache) get(key []byte) *View {
	c.mu.RLock()
	defer c.mu.RUnlock()
	// Indexing with string(key) does not copy key.
	return c.views[string(key)]
}

// put caches v under key.
func (c *viewCache) put(key []byte, v *View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.views == nil || len(c.views) >= maxCachedViews {
		c.views = make(map[string]*View)
	}
	c.views[string(key)] = v
}

// len returns how many views are cached.
func (c *viewCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.views)
}

// appendCallerKey appends c's cache key to dst: the ID and each group,
// each prefixed with its length, so that no two callers share a key
// whatever bytes their names hold ("a" in group "b,c" is not "a,b" in
// group "c").
func appendCallerKey(dst []byte, c Caller) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(c.ID)))
	dst = append(dst, c.ID...)
	for _, g := range c.Groups {
		dst = binary.AppendUvarint(dst, uint64(len(g)))
		dst = append(dst, g...)
	}
	return dst
}
