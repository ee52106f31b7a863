package main

import (
	"fmt"
	"strings"
)

// globalOptions are shared by every Caddy the orchestrator starts: no admin
// endpoint to collide on, no certificates, loopback only, and a short
// grace period so that stopping is quick.
const globalOptions = `	admin off
	auto_https off
	persist_config off
	default_bind 127.0.0.1
	grace_period 1s
`

// proxyCaddyfile is a plain reverse proxy to one upstream, with Caddy's
// default transport settings: the baseline that mcpgate is compared with.
func proxyCaddyfile(addr, upstreamHostPort string) string {
	return fmt.Sprintf("{\n%s}\n\nhttp://%s {\n\treverse_proxy %s\n}\n", globalOptions, addr, upstreamHostPort)
}

// The identities the gateways name their callers by: benchIdentity, one
// literal caller for every session, or callerIdentity, a caller per value
// of the load generator's callerHeader, so that each idle session of the
// footprint is a caller's own (a caller may hold only so many sessions).
const (
	benchIdentity  = "bench"
	callerHeader   = "X-Bench-Caller"
	callerIdentity = "{http.request.header." + callerHeader + "}"
)

// gatewayCaddyfile serves one connector per upstream URL, named by ids,
// all granted to every caller, whom identity names. storage holds the
// app's storage lines (postgresStorage), or nothing for the default,
// Badger in Caddy's data directory.
func gatewayCaddyfile(addr, identity string, ids, urls []string, storage string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n%s\tmcpgate {\n\t\tidentity %s\n%s", globalOptions, identity, storage)
	for i, id := range ids {
		fmt.Fprintf(&b, "\t\tconnector %s {\n\t\t\turl %s\n\t\t}\n", id, urls[i])
	}
	fmt.Fprintf(&b, "\t\tgrant {\n\t\t\tsrc *\n\t\t\tconnectors %s\n\t\t}\n\t}\n}\n", strings.Join(ids, " "))
	fmt.Fprintf(&b, "\nhttp://%s {\n\tmcpgate\n}\n", addr)
	return b.String()
}

// postgresStorage keeps mcpgate's records in the PostgreSQL database of
// dsn, sealed under sealKey (base64 of 32 bytes): a shared store needs a
// configured key, since the key never lives in the database.
func postgresStorage(dsn, sealKey string) string {
	return fmt.Sprintf("\t\tstorage postgres {\n\t\t\tdsn %s\n\t\t}\n\t\tseal_key %s\n", dsn, sealKey)
}

// coldProxyCaddyfile is the cold start's baseline: a reverse proxy with the
// quickstart's global options (an admin endpoint, loopback, the same
// timeouts) and nothing of mcpgate, so that the two starts differ only in
// mcpgate.
func coldProxyCaddyfile(addr, adminAddr, upstreamHostPort string) string {
	return fmt.Sprintf(`{
	admin %s
	default_bind 127.0.0.1
	servers {
		timeouts {
			read_header 10s
			read_body 30s
			idle 5m
		}
	}
}

http://%s {
	reverse_proxy %s
}
`, adminAddr, addr, upstreamHostPort)
}
