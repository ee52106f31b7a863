package redact

import (
	"encoding/json"
	"errors"
	"slices"
)

// edit replaces text[start:end] with the marker, quoted for a JSON scalar.
type edit struct {
	start, end int
	quoted     bool
}

// Text returns text with every occurrence of a secret replaced by Marker.
// It returns text itself, not a copy, when there is none, and never
// changes text.
func (s *Secrets) Text(text []byte) []byte {
	if s == nil {
		return text
	}
	sp := s.spans(text, false)
	if len(sp) == 0 {
		return text
	}
	return apply(text, textEdits(sp))
}

// String is Text for a string, such as an error message.
func (s *Secrets) String(msg string) string {
	if s == nil {
		return msg
	}
	return string(s.Text([]byte(msg)))
}

// Error returns err, or an error with err's message redacted when the
// message holds a secret. That error wraps nothing: what it replaces holds
// the secret, and a caller that unwrapped it could print that.
func (s *Secrets) Error(err error) error {
	if s == nil || err == nil {
		return err
	}
	msg := err.Error()
	if safe := s.String(msg); safe != msg {
		return errors.New(safe)
	}
	return err
}

// JSON returns a JSON text with every occurrence of a secret replaced, and
// still valid: an occurrence inside a string becomes Marker, and a scalar
// outside any string (a number, true, false, null) that holds some of one
// becomes the string "[redacted]". It returns text itself, not a copy,
// when there is no occurrence, and never changes text. Text that is not
// valid JSON is treated as Text treats it.
func (s *Secrets) JSON(text []byte) []byte {
	if s == nil {
		return text
	}
	// Any text's forms include JSON's, so the one scan finds every text
	// that needs more work, and only such a text pays for the rest.
	sp := s.spans(text, false)
	if len(sp) == 0 {
		return text
	}
	if !json.Valid(text) {
		return apply(text, textEdits(sp))
	}
	return apply(text, jsonEdits(text, s.spans(text, true)))
}

// textEdits replaces every occurrence.
func textEdits(sp []span) []edit {
	out := make([]edit, len(sp))
	for i, x := range sp {
		out[i] = edit{start: x.start, end: x.end}
	}
	return out
}

// jsonEdits replaces the occurrences that are text of a JSON string or
// scalars, and drops those that begin inside an escape sequence, which are
// not occurrences of the string's text (in "\u0061bc", "61bc" is not).
func jsonEdits(text []byte, sp []span) []edit {
	var out []edit
	var sc scanner
	for _, x := range sp {
		switch aligned := sc.advance(text, x.start); {
		case !aligned:
		case sc.inString:
			out = append(out, edit{start: x.start, end: x.end})
		default:
			out = appendScalars(out, text, x)
		}
	}
	return out
}

// scanner walks JSON text to tell where its strings are.
type scanner struct {
	pos      int
	inString bool
}

// advance walks to to, and reports whether to is where a character begins
// rather than inside an escape sequence. Positions only grow.
func (sc *scanner) advance(text []byte, to int) bool {
	for sc.pos < to {
		c := text[sc.pos]
		switch {
		case sc.inString && c == '\\' && sc.pos+1 < len(text) && text[sc.pos+1] == 'u':
			sc.pos += 6
			continue
		case sc.inString && c == '\\':
			sc.pos += 2
			continue
		case c == '"':
			sc.inString = !sc.inString
		}
		sc.pos++
	}
	return sc.pos == to
}

// appendScalars appends an edit for each scalar outside any string that
// the occurrence x touches: the whole scalar, so that what replaces it is
// a JSON value.
func appendScalars(out []edit, text []byte, x span) []edit {
	for i := x.start; i < x.end; i++ {
		if !scalarByte(text[i]) {
			continue
		}
		start, end := i, i
		for start > 0 && scalarByte(text[start-1]) {
			start--
		}
		for end < len(text) && scalarByte(text[end]) {
			end++
		}
		out = append(out, edit{start: start, end: end, quoted: true})
		i = end
	}
	return out
}

// scalarByte reports whether c, outside a string, belongs to a number or
// a literal rather than to the structure around them.
func scalarByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '{', '}', '[', ']', ',', ':', '"':
		return false
	}
	return true
}

// apply returns a copy of text with edits made, overlapping ones merged,
// or text itself when there are none.
func apply(text []byte, edits []edit) []byte {
	if len(edits) == 0 {
		return text
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	out := make([]byte, 0, len(text))
	done := 0
	for i := 0; i < len(edits); {
		e := edits[i]
		for i++; i < len(edits) && edits[i].start < e.end; i++ {
			e.end = max(e.end, edits[i].end)
		}
		out = append(out, text[done:e.start]...)
		if e.quoted {
			out = append(out, quotedMarker...)
		} else {
			out = append(out, Marker...)
		}
		done = e.end
	}
	return append(out, text[done:]...)
}
