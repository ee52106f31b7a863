package testupstream

import (
	"context"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// subscribers tracks which sessions subscribed to which resources, so that
// UpdateResource reaches them. mcp-go acknowledges resources/subscribe and
// subscriptions/listen's resourceSubscriptions but leaves the fan-out of
// notifications/resources/updated to the server.
type subscribers struct {
	mu   sync.Mutex
	uris map[server.ClientSession]map[string]bool
}

// hooks records subscriptions: a legacy session's through
// resources/subscribe and resources/unsubscribe, for as long as the session
// lives; a 2026-07-28 listen stream's through its resourceSubscriptions,
// for as long as the stream is open.
func (sb *subscribers) hooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		sb.set(server.ClientSessionFromContext(ctx), req.Params.URI, true)
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		sb.set(server.ClientSessionFromContext(ctx), req.Params.URI, false)
	})
	h.AddOnUnregisterSession(func(_ context.Context, session server.ClientSession) { sb.forget(session) })
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		session := server.ClientSessionFromContext(ctx)
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			sb.set(session, uri, true)
		}
		go func() {
			<-ctx.Done()
			sb.forget(session)
		}()
	})
	return h
}

// set records or removes one subscription of session.
func (sb *subscribers) set(session server.ClientSession, uri string, on bool) {
	if session == nil {
		return
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.uris == nil {
		sb.uris = map[server.ClientSession]map[string]bool{}
	}
	mine := sb.uris[session]
	if mine == nil {
		mine = map[string]bool{}
		sb.uris[session] = mine
	}
	if on {
		mine[uri] = true
	} else {
		delete(mine, uri)
	}
}

// forget drops every subscription of session.
func (sb *subscribers) forget(session server.ClientSession) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	delete(sb.uris, session)
}

// subscribed returns the sessions subscribed to uri.
func (sb *subscribers) subscribed(uri string) []server.ClientSession {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var out []server.ClientSession
	for session, uris := range sb.uris {
		if uris[uri] {
			out = append(out, session)
		}
	}
	return out
}

// UpdateResource sends notifications/resources/updated for uri to every
// session subscribed to it, as a server whose resource changed would, and
// returns how many it reached. A session whose notification channel is
// full misses it, as with mcp-go's own notifications.
func (s *Server) UpdateResource(uri string) int {
	n := 0
	note := mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: mcp.MethodNotificationResourceUpdated,
			Params: mcp.NotificationParams{AdditionalFields: map[string]any{"uri": uri}},
		},
	}
	for _, session := range s.subs.subscribed(uri) {
		select {
		case session.NotificationChannel() <- note:
			n++
		default:
		}
	}
	return n
}

// Subscribed reports how many sessions are subscribed to uri.
func (s *Server) Subscribed(uri string) int {
	return len(s.subs.subscribed(uri))
}
