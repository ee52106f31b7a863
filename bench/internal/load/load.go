// Package load drives an MCP Streamable HTTP endpoint with many concurrent
// legacy-era sessions and measures what it sustains: requests per second,
// latency percentiles and errors.
//
// It speaks the protocol itself with net/http rather than through an SDK,
// so that the client costs as little CPU as possible: request bodies are
// built from fixed prefixes, every session shares one http.Transport, and
// a reply is checked without decoding more of it than it must.
package load

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// The methods a Pool can drive.
const (
	// MethodCall calls one tool per request.
	MethodCall = "tools/call"
	// MethodList lists the tools, a whole list per request: a session
	// follows nextCursor page by page, each page a round trip, and counts
	// the request (and its latency) once the last page has come.
	MethodList = "tools/list"
)

// The protocol eras a Pool can speak.
const (
	// EraLegacy opens each session with the initialize handshake
	// (protocol version 2025-11-25) and sends its Mcp-Session-Id.
	EraLegacy = "legacy"
	// EraModern sends stateless 2026-07-28 requests: no handshake, the
	// version in a header and in params._meta.
	EraModern = "modern"
)

// Options configures a Pool.
type Options struct {
	// URL is the MCP endpoint, e.g. http://127.0.0.1:8080/mcp. Required.
	URL string
	// Header is sent with every request, e.g. an Authorization header.
	// Default: none.
	Header http.Header
	// Concurrency is the number of sessions, each with one request in
	// flight at a time. Default: 1.
	Concurrency int
	// Method is what each session sends in a loop: MethodCall (default)
	// or MethodList.
	Method string
	// Tool is the tool that MethodCall calls with {"message": ...}.
	// Default: "echo".
	Tool string
	// Era is the protocol era: EraLegacy (default) or EraModern.
	Era string
	// Timeout bounds each HTTP exchange. Default: 10s.
	Timeout time.Duration
	// CallerHeader, when set, is a header in which HoldIdle gives each
	// session a value of its own (agent-1, agent-2, ...), so that a
	// gateway that names its callers by it sees every session as another
	// caller's. Default: none.
	CallerHeader string
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() (Options, error) {
	if o.URL == "" {
		return o, errors.New("load: URL is required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Method == "" {
		o.Method = MethodCall
	}
	if o.Method != MethodCall && o.Method != MethodList {
		return o, errors.New("load: method must be " + MethodCall + " or " + MethodList)
	}
	if o.Era == "" {
		o.Era = EraLegacy
	}
	if o.Era != EraLegacy && o.Era != EraModern {
		return o, errors.New("load: era must be " + EraLegacy + " or " + EraModern)
	}
	if o.Tool == "" {
		o.Tool = "echo"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return o, nil
}

// Pool is a set of initialized sessions on one endpoint. Run may be called
// more than once, e.g. for a warm-up and then a measured window, but not
// concurrently.
type Pool struct {
	opts     Options
	tr       *http.Transport
	sessions []*session
}

// Dial opens opts.Concurrency sessions, each with the initialize handshake.
func Dial(ctx context.Context, opts Options) (*Pool, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{opts: opts, tr: newTransport(opts.Concurrency)}
	hc := &http.Client{Transport: p.tr, Timeout: opts.Timeout}
	p.sessions = make([]*session, opts.Concurrency)
	for i := range p.sessions {
		p.sessions[i] = newSession(hc, opts)
	}
	if err := p.each(func(s *session) error { return s.handshake(ctx) }); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// newTransport returns a transport that keeps one idle connection per
// session, so that no request waits for a new TCP connection.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// each runs f on every session at once and returns the first error.
func (p *Pool) each(f func(*session) error) error {
	errs := make([]error, len(p.sessions))
	var wg sync.WaitGroup
	for i, s := range p.sessions {
		wg.Go(func() { errs[i] = f(s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run makes every session send requests back to back for d, or until ctx
// ends, and reports what they saw. Elapsed runs until the last request in
// flight at the deadline has been answered.
func (p *Pool) Run(ctx context.Context, d time.Duration) Result {
	recs := make([]*recorder, len(p.sessions))
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, s := range p.sessions {
		recs[i] = newRecorder(d)
		wg.Go(func() { s.loop(ctx, deadline, recs[i]) })
	}
	wg.Wait()
	return merge(recs, time.Since(start))
}

// Once sends one request on the first session and checks its reply, e.g.
// to fill a server's cache before a measurement.
func (p *Pool) Once(ctx context.Context) error {
	_, err := p.sessions[0].request(ctx)
	return err
}

// Close ends the sessions with DELETE, best effort, and closes the
// connections, so that the server under test does not keep them.
func (p *Pool) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.each(func(s *session) error { s.close(ctx); return nil })
	p.tr.CloseIdleConnections()
}
