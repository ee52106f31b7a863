package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Answer is the size of a whole tools/list as an agent receives it, every
// page of it.
type Answer struct {
	Bytes int64 // the bodies of every page
	Tools int
	Pages int
}

// ListAnswer opens a legacy session on opts.URL, reads its whole
// tools/list page by page, as a session of the load does, and ends the
// session. Unlike the load, it decodes every page to count its tools.
func ListAnswer(ctx context.Context, opts Options) (Answer, error) {
	opts.Method, opts.Era = MethodList, EraLegacy
	opts, err := opts.withDefaults()
	if err != nil {
		return Answer{}, err
	}
	hc := &http.Client{Transport: newTransport(1), Timeout: opts.Timeout}
	defer hc.CloseIdleConnections()
	s := newSession(hc, opts)
	if err := s.handshake(ctx); err != nil {
		return Answer{}, err
	}
	defer s.close(ctx)
	var a Answer
	var cursor []byte
	for a.Pages < maxPages {
		resp, err := s.post(ctx, s.body(cursor))
		if err != nil {
			return a, fmt.Errorf("tools/list page %d: %w", a.Pages+1, err)
		}
		next, err := checkReply(resp, s.buf.Bytes(), false)
		if err != nil {
			return a, fmt.Errorf("tools/list page %d: %w", a.Pages+1, err)
		}
		msg := s.buf.Bytes()
		if mediaType(resp.Header) == "text/event-stream" {
			msg = lastResponse(msg)
		}
		var page struct {
			Result struct {
				Tools []json.RawMessage `json:"tools"`
			} `json:"result"`
		}
		if err := json.Unmarshal(msg, &page); err != nil {
			return a, fmt.Errorf("tools/list page %d: %w", a.Pages+1, err)
		}
		a.Pages++
		a.Bytes += int64(s.buf.Len())
		a.Tools += len(page.Result.Tools)
		if next == nil {
			return a, nil
		}
		cursor = append(cursor[:0], next...)
	}
	return a, fmt.Errorf("tools/list: more than %d pages", maxPages)
}
