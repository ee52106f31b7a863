package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
	"github.com/mcpgate/caddy-mcpgate/internal/textcut"
)

// maxDocument bounds a metadata document even when the caller's client
// has a larger cap; real documents are a few kilobytes.
const maxDocument = 1 << 20

// errAbsent marks a candidate URL that answered "no document here", after
// which discovery tries the next candidate.
var errAbsent = errors.New("no document")

// absent reports whether a status means the candidate has no document.
//
// 404 and 410 say so directly. 405 is what routers answer for a GET to a
// path that serves only POST, as an MCP endpoint mounted at the root does.
// Every other status, 400 and 5xx included, is an error: a failing server
// must not send discovery on to a less specific document.
func absent(status int) bool {
	switch status {
	case http.StatusNotFound, http.StatusGone, http.StatusMethodNotAllowed:
		return true
	}
	return false
}

// fetchFirst fetches the candidate URLs in order and returns the first
// document that is there, once validate accepts it, or nil when none is.
// An error at any candidate ends the search.
func fetchFirst[T any](ctx context.Context, hc *http.Client, candidates []string, validate func(*T) error) (*T, error) {
	for _, target := range candidates {
		doc := new(T)
		err := fetchJSON(ctx, hc, target, doc)
		if errors.Is(err, errAbsent) {
			continue
		}
		if err == nil {
			err = validate(doc)
		}
		if err != nil {
			return nil, err
		}
		return doc, nil
	}
	return nil, nil
}

// fetchJSON GETs target and decodes the JSON document it answers into v,
// which must point to a struct. It returns errAbsent when the status says
// there is no document.
func fetchJSON(ctx context.Context, hc *http.Client, target string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", redact(target), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", redact(target), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if err := readJSON(resp, v); err != nil {
		if errors.Is(err, errAbsent) {
			return err
		}
		return fmt.Errorf("GET %s: %w", redact(target), err)
	}
	return nil
}

// readJSON checks a metadata response's status and type and decodes it.
func readJSON(resp *http.Response, v any) error {
	if absent(resp.StatusCode) {
		return errAbsent
	}
	if resp.StatusCode != http.StatusOK {
		// RFC 8414 §3.2 and RFC 9728 §3.2 answer with 200 OK.
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return fmt.Errorf("content type %s, want application/json", quote(ct))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("reading the document: %w", unwrapURLError(err))
	}
	if len(data) > maxDocument {
		return fmt.Errorf("document larger than %d bytes", maxDocument)
	}
	return decodeStrict(data, v)
}

// decodeStrict decodes a metadata document, refusing what parsers could
// read differently, such as duplicate or case-variant keys: see
// strictjson.Unmarshal.
func decodeStrict(data []byte, v any) error {
	err := strictjson.Unmarshal(data, v, false)
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*strictjson.Error](err); ok {
		return fmt.Errorf("invalid JSON: %s at offset %d", shorten(se.Reason), se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field == "" {
		return errors.New("invalid JSON: not an object")
	}
	return fmt.Errorf("invalid JSON: %s", shorten(strings.TrimPrefix(err.Error(), "json: ")))
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// whole URL, query included; callers name the URL themselves.
func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// redact returns a URL for an error message: without its query, which
// may carry a key an admin put in a connector URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return quote(raw)
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
	return u.String()
}

// quote returns s quoted for an error message, shortened when long: the
// strings it quotes come from untrusted documents.
func quote(s string) string {
	return strconv.Quote(shorten(s))
}

// shorten cuts s to at most 120 bytes, on a rune boundary, marking the
// cut.
func shorten(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return textcut.Prefix(s, max-len("…")) + "…"
}
