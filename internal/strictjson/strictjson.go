// Package strictjson checks that a JSON text means the same thing to every parser.
//
// Go's encoding/json matches member names case-insensitively, folds "ſ" to
// "s" and the Kelvin sign to "k", and keeps the last of two duplicate
// members; other parsers keep the first or match exactly. A gateway that
// authorizes one reading of a body while the upstream acts on another is a
// known vulnerability (CVE-2026-27896, GO-2026-4770, GHSA-4gph-2hhr-5mwg), so
// the gateway runs Check on every body before anything else reads it.
//
// It is production code, on the gateway's hot path (mcpmux and oauthflow
// use it); it sits under internal/ only so that no other module builds on
// it.
package strictjson

// DefaultMaxDepth is the nesting limit Check uses when Options.MaxDepth is 0.
const DefaultMaxDepth = 64

// depthLimit is encoding/json's own nesting limit; a deeper text would pass
// Check and then fail in the decoder, so larger MaxDepth values are lowered.
const depthLimit = 10000

// Options bound the work done on one text.
type Options struct {
	// MaxDepth is how many arrays and objects may be open at once. It
	// defaults to DefaultMaxDepth when 0 or negative and is capped at 10000,
	// encoding/json's limit.
	MaxDepth int
}

// maxDepth returns the effective nesting limit; a nil *Options means defaults.
func (o *Options) maxDepth() int {
	if o == nil || o.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return min(o.MaxDepth, depthLimit)
}

// Check validates data as exactly one JSON value and rejects anything that
// two conforming parsers could read differently.
//
// Data must be one RFC 8259 value with optional white space around it. Check
// rejects, with an *Error:
//   - any syntax error, trailing data, a byte order mark, and invalid UTF-8
//     inside strings (RFC 8259 §8.1 requires UTF-8; encoding/json would
//     silently replace the bytes with U+FFFD);
//   - a member name that appears twice in one object, compared after
//     unescaping, so "n\u0061me" equals "name";
//   - two member names in one object that are equal under Unicode simple case
//     folding, the folding strings.EqualFold and encoding/json use, such as
//     "name"/"Name", "params"/"paramſ" and "kind"/"\u212Aind";
//   - nesting deeper than the MaxDepth of opts (nil means defaults).
//
// Lone surrogates in \u escapes are accepted, as encoding/json accepts them;
// in member names they count as U+FFFD, the rune encoding/json decodes them
// to, so "\ud800" and "\udc00" are duplicates. Names that differ by a NUL or
// a zero-width character ("name\u0000") are distinct names and are accepted:
// no mainstream parser equates them, and the gateway matches exactly.
//
// Check never panics, does not allocate for small messages, and runs in
// time linear in len(data).
func Check(data []byte, opts *Options) error {
	if hasBOM(data) {
		// RFC 8259 §8.1: implementations MUST NOT add a byte order mark
		// and MAY reject one; encoding/json rejects it, so a parser that
		// skips it would read a text the decoder refuses.
		return syntaxError(0, "byte order mark at start of text")
	}
	s := scanners.Get().(*scanner)
	s.data, s.maxDepth = data, opts.maxDepth()
	err := s.run()
	s.release()
	return err
}

// hasBOM reports whether data starts with the UTF-8 byte order mark.
func hasBOM(data []byte) bool {
	return len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF
}
