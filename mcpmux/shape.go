package mcpmux

import (
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// cacheable are the 2026-07-28 methods whose results carry caching hints,
// ttlMs and cacheScope (SEP-2549).
var cacheable = map[string]bool{
	"tools/list": true, "prompts/list": true, "resources/list": true,
	"resources/templates/list": true, "resources/read": true,
}

// Wire forms of the members shapeResult sets.
var (
	resultComplete = []byte(`"` + mcp.ResultTypeComplete + `"`)
	scopePrivate   = []byte(`"` + mcp.CacheScopePrivate + `"`)
)

// shapeResult gives a 2026-07-28 agent a result its schema accepts, what
// ever era the upstream spoke: a resultType on every result, and caching
// hints on lists and reads. The hints are the gateway's own. Every view is
// the caller's (grants filter it, and a credential may be this user's), so
// cacheScope is always private; a list may be kept while the gateway's own
// list cache would keep it; a read, as long as the upstream said, and with
// no word from it not at all.
func (m *Mux) shapeResult(x *exchange, rep *reply) *reply {
	if !x.modern || rep == nil || rep.result == nil {
		return rep
	}
	res := rep.result
	kind, _ := stringMember(res, "resultType")
	if kind == "" {
		kind = string(mcp.ResultTypeComplete)
		res = setOrKeep(res, "resultType", resultComplete)
	}
	if kind == string(mcp.ResultTypeComplete) && cacheable[x.method] {
		ttl := m.listTTLLeft(x)
		if x.method == "resources/read" {
			ttl = upstreamTTL(res)
		}
		res = setOrKeep(res, "ttlMs", strconv.AppendInt(nil, ttl.Milliseconds(), 10))
		res = setOrKeep(res, "cacheScope", scopePrivate)
	}
	rep.result = res // every reply is the request's own
	return rep
}

// setOrKeep sets a member, keeping the result as it was should it not be
// an object (which no schema accepts anyway; the agent sees what came).
func setOrKeep(res []byte, name string, value []byte) []byte {
	if out, err := setMember(res, name, value); err == nil {
		return out
	}
	return res
}

// listTTLLeft is how much longer the oldest list an aggregated answer was
// made from stays fresh in the gateway's cache.
func (m *Mux) listTTLLeft(x *exchange) time.Duration {
	if x.listedAt.IsZero() {
		return m.ttl
	}
	return max(0, m.ttl-m.now().Sub(x.listedAt))
}

// upstreamTTL is the ttlMs a 2026-07-28 upstream gave a read, or zero.
func upstreamTTL(res []byte) time.Duration {
	n, err := strconv.ParseInt(string(member(res, "ttlMs")), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	// Clamped, so that a huge ttlMs cannot overflow the Duration into a
	// negative one.
	return time.Duration(min(n, int64(time.Duration(1<<62)/time.Millisecond))) * time.Millisecond
}
