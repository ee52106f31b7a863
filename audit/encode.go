package audit

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends e's JSON to b: what MarshalJSON gives, field for
// field, built without reflection, for a Table that stores events as
// JSON (store/postgres encodes every tool call).
func (e Event) AppendJSON(b []byte) []byte { return appendStored(b, e) }

// appendStored appends e as the ring stores it: JSON that decodes as
// MarshalJSON's does, built without reflection, since the writer encodes
// every tool call. A string with anything but plain ASCII goes through
// encoding/json, which knows every escape.
func appendStored(b []byte, e Event) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = appendString(b, string(e.Kind))
	for _, f := range [...]struct{ key, value string }{
		{`,"user":`, e.User}, {`,"connector":`, e.Connector}, {`,"tool":`, e.Tool},
		{`,"decision":`, e.Decision}, {`,"outcome":`, e.Outcome}, {`,"args_hash":`, e.ArgsHash},
	} {
		if f.value != "" {
			b = appendString(append(b, f.key...), f.value)
		}
	}
	if e.Count != 0 {
		b = strconv.AppendInt(append(b, `,"count":`...), int64(e.Count), 10)
	}
	if e.Detail != "" {
		b = appendString(append(b, `,"detail":`...), e.Detail)
	}
	if ms := milliseconds(e.Duration); ms != 0 {
		b = strconv.AppendFloat(append(b, `,"duration_ms":`...), ms, 'g', -1, 64)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	if !verbatim(s) {
		q, _ := json.Marshal(s) // a string always encodes
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// verbatim reports whether s goes into a JSON string as it is: printable
// ASCII without a quote or a backslash.
func verbatim(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// quotedBound is at least the length of s quoted by appendString: as it
// is, or at most six bytes a byte (\u00XX) once it goes through
// encoding/json, which escapes < > & too.
func quotedBound(s string) int {
	if verbatim(s) {
		return len(s) + 2
	}
	return 6*len(s) + 2
}
