package discovery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// laterProbes follow an initialize that the resource let through without
// a token. An MCP server may accept initialize unauthenticated and
// challenge only the requests after it; the scope of that first 401
// challenge is still what to ask for (MCP authorization, scope selection
// strategy), so the probe goes on as a client would: the initialized
// notification, then a request.
var laterProbes = []string{
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
}

// probe sends an MCP initialize request to resource and returns the
// Bearer challenge of a 401 answer. When initialize is let through, the
// challenge is that of the first 401 to laterProbes, sent in the session
// initialize opened (ended after with a DELETE); nil when there is none.
// Only the initialize's failure is an error: what follows is a hint.
func probe(ctx context.Context, hc *http.Client, resource string) (*Challenge, error) {
	a, err := probeStep(ctx, hc, resource, probeBody, "")
	if err != nil {
		return nil, err
	}
	if a.unauthorized {
		return a.challenge, nil
	}
	return probeLater(ctx, hc, resource, a.session), nil
}

// probeLater sends laterProbes and returns the challenge of the first
// 401, or nil.
func probeLater(ctx context.Context, hc *http.Client, resource, session string) *Challenge {
	defer endSession(ctx, hc, resource, session)
	for _, body := range laterProbes {
		a, err := probeStep(ctx, hc, resource, body, session)
		if err != nil {
			return nil
		}
		if a.unauthorized {
			return a.challenge
		}
	}
	return nil
}

// probeAnswer is what one probe request learned.
type probeAnswer struct {
	unauthorized bool
	challenge    *Challenge // of a 401, when it has a Bearer one
	session      string     // Mcp-Session-Id
}

// probeStep posts one JSON-RPC message of the probe to resource.
func probeStep(ctx context.Context, hc *http.Client, resource, body, session string) (probeAnswer, error) {
	resp, err := probeRequest(ctx, hc, http.MethodPost, resource, body, session)
	if err != nil {
		return probeAnswer{}, fmt.Errorf("probing %s: %w", redact(resource), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		// Not read: an unprotected server may answer with an event stream.
		return probeAnswer{session: resp.Header.Get("Mcp-Session-Id")}, nil
	}
	drain(resp)
	a := probeAnswer{unauthorized: true}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if ch, err := ParseChallenge(v); err == nil {
			a.challenge = ch
			break
		}
	}
	return a, nil
}

// endSession ends the probe's MCP session, if the resource opened one, so
// that it holds nothing for it; its answer does not matter.
func endSession(ctx context.Context, hc *http.Client, resource, session string) {
	if session == "" {
		return
	}
	if resp, err := probeRequest(ctx, hc, http.MethodDelete, resource, "", session); err == nil {
		drain(resp)
		resp.Body.Close()
	}
}

// probeRequest sends one request of the probe, with the headers of an MCP
// client of probeProtocolVersion in session (none when ""), and a JSON
// body unless body is "".
func probeRequest(ctx context.Context, hc *http.Client, method, resource, body, session string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, resource, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	req.Header.Set("MCP-Protocol-Version", probeProtocolVersion)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, unwrapURLError(err)
	}
	return resp, nil
}

// drain reads what is left of a short answer, so that its connection can
// be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
}
