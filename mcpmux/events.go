package mcpmux

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Reading server-sent events and telling JSON-RPC messages apart.

// readEvents calls fn with the data of each server-sent event until fn
// returns false or the stream ends. data is reused for the next event: fn
// must copy what it keeps. Only data lines count; event names, ids, retry
// and comments carry nothing an MCP message needs.
func readEvents(body io.Reader, fn func(data []byte) bool) error {
	// ReadSlice reads lines in place, without a copy each; a line longer
	// than the buffer is gathered below, up to maxUpstreamMessage.
	r := bufio.NewReaderSize(body, 16<<10)
	var data []byte
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather the rest of it.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
				if len(long) > maxUpstreamMessage {
					return errors.New("upstream event is too large")
				}
			}
			line = long
		}
		if err != nil && len(line) == 0 {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if len(data) > 0 && !fn(data) {
				return nil
			}
			data = data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			// One space after the colon is not part of the value, and the
			// lines of one event join with line feeds (HTML, "Parsing an
			// event stream").
			v := bytes.TrimPrefix(line[5:], []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
		// The stream ended mid-event. HTML's parser would drop the event;
		// an answer that lost only its closing blank line is still the
		// answer, so it is delivered.
		if err != nil {
			if len(data) > 0 {
				fn(data)
			}
			return nil
		}
	}
}

// The kinds of JSON-RPC message.
const (
	kindInvalid = iota
	kindRequest
	kindNotification
	kindResponse
)

// classify tells a message's kind, method and id, by the members it has
// (JSON-RPC 2.0: a request has a method and an id, a notification a
// method alone, a response a result or error and an id). Anything else is
// kindInvalid, which the readers drop. id is a slice of data.
func classify(data []byte) (kind int, method string, id []byte) {
	hasResult := false
	err := members(data, func(key string, v span) bool {
		switch key {
		case "method":
			method, _ = unquote(data[v.start:v.end])
		case "id":
			id = data[v.start:v.end]
		case "result", "error":
			hasResult = true
		}
		return true
	})
	switch {
	case err != nil:
		return kindInvalid, "", nil
	case method != "" && id != nil:
		return kindRequest, method, id
	case method != "":
		return kindNotification, method, nil
	case hasResult && id != nil:
		return kindResponse, "", id
	}
	return kindInvalid, "", nil
}
