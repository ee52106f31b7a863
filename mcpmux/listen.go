package mcpmux

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Backoff bounds for an upstream notification stream that breaks. The
// wait doubles from the least to the most, so that an upstream that drops
// every stream at once is not asked again and again.
const (
	listenRetryMin = time.Second
	listenRetryMax = 30 * time.Second
)

// listenParams subscribes to every list_changed notification
// (2026-07-28 subscriptions/listen); listenFilter adds the resources
// agents subscribed to.
var listenParams = []byte(`{"notifications":{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true}}`)

// startListening opens the upstream's notification stream unless one is
// open already; one open on a connection that has been replaced is opened
// again on the new one, where the subscriptions are made again.
func (u *upstream) startListening(cred http.Header) {
	// No background (a connection made outside a Mux) means no listener.
	if u.background == nil {
		return
	}
	// At most one listener per upstream connection: the swap lets one
	// caller start it however many connect at once.
	if !u.listens.CompareAndSwap(false, true) {
		if st := u.watch.streamState(); st != nil && st != u.current(eraAny) {
			u.relisten(nil)
		}
		return
	}
	u.background(func(ctx context.Context) {
		defer u.listens.Store(false)
		u.listen(ctx, cred)
	})
}

// listen keeps a notification stream open to the upstream for as long as
// it has a connection, so that list_changed sent outside any request still
// invalidates the cache: the GET stream of the legacy session, or
// subscriptions/listen in the stateless era.
func (u *upstream) listen(ctx context.Context, cred http.Header) {
	wait := listenRetryMin
	for {
		st := u.current(eraAny)
		if st == nil || ctx.Err() != nil {
			return
		}
		start := time.Now()
		status := u.listenOnce(ctx, cred, st)
		if status == http.StatusMethodNotAllowed || status == http.StatusUnauthorized || status == http.StatusNotFound {
			// No stream on offer, or no longer welcome: calls will find
			// out and reconnect, which starts a new listener.
			return
		}
		// A stream that stayed up a while was healthy: its end is news,
		// not one more failure of a run, and the backoff starts over.
		if time.Since(start) > listenRetryMax {
			wait = listenRetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-u.watch.wakeup():
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// listenOnce reads one notification stream until it ends, and returns the
// HTTP status it was answered with (0 when it could not connect).
func (u *upstream) listenOnce(ctx context.Context, cred http.Header, st *upstreamState) int {
	// Registered first, so that a change to the subscribed resources
	// either comes before the request reads them or ends this stream.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u.watch.opened(st, cancel)
	defer u.watch.closed()
	if !st.modern {
		u.resubscribe(ctx, cred, st)
	}
	req, err := u.listenRequest(ctx, cred, st)
	if err != nil {
		return 0
	}
	resp, err := u.listenSend(req)
	if err != nil {
		return 0
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode
	}
	err = readEvents(resp.Body, func(data []byte) bool {
		switch kind, method, msgID := classify(data); kind {
		case kindNotification:
			u.notified(data, method, nil, false)
		case kindRequest:
			data, msgID, ask := bytes.Clone(data), bytes.Clone(msgID), u.calls.soleAsker()
			u.detach(func(life context.Context) { u.upstreamRequest(life, ctx, cred, st, data, msgID, method, ask) })
		}
		// Once the connection is replaced this stream is the old
		// session's: stop, and let listen open one on the new.
		return u.slot(st.modern).Load() == st
	})
	if err != nil && ctx.Err() == nil {
		if ce := u.logger.Check(zapcore.DebugLevel, "upstream notification stream broke"); ce != nil {
			ce.Write(zap.String("connector", u.conn.ID), zap.Error(err))
		}
	}
	return resp.StatusCode
}

// listenRequest builds the era's stream request: a GET on the legacy
// session (Streamable HTTP 2025-11-25, "Listening for Messages from the
// Server"), or a subscriptions/listen POST, which has an id like any
// request (Subscriptions, "Opening a Stream").
func (u *upstream) listenRequest(ctx context.Context, cred http.Header, st *upstreamState) (*http.Request, error) {
	if !st.modern {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.conn.URL.String(), nil)
		if err != nil {
			return nil, err
		}
		u.setHeaders(req.Header, cred, st)
		req.Header.Set("Accept", "text/event-stream")
		return req, nil
	}
	id := strconv.AppendInt(nil, u.nextID.Add(1), 10)
	body := appendEnvelope(id, "subscriptions/listen", u.params(st, u.listenFilter(st), agentMeta{}))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.conn.URL.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	u.setHeaders(req.Header, cred, st)
	req.Header.Set(mcp.HeaderMethod, "subscriptions/listen")
	return req, nil
}

// listenSend sends the stream request, by the credential's RoundTrip when
// it has one; the client's redirect refusal needs no stand-in there, since
// a RoundTrip follows no redirect.
func (u *upstream) listenSend(req *http.Request) (*http.Response, error) {
	if u.sender.Load() != nil {
		return u.send(req)
	}
	return u.client.Do(req)
}
