package oauthflow

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Secrets in memory print and marshal as REDACTED. A type that holds one
// tags each secret field `secret:"true"`, declares a method-free twin
// (type fooView foo; a record's wire type serves), and implements
// fmt.Formatter and json.Marshaler by handing the twin to formatRedacted
// and marshalRedacted. The twin is what lets the helpers print the value
// without calling its own methods again. Only printing pays for the
// reflection: building and using a value (a Token on every call) does not.
// The stored form is written through the wire twin directly, so the
// secrets reach the store, and only the store.

// redacted is what a secret prints as.
const redacted = "REDACTED"

// secretTag is the struct tag that marks a secret field.
const secretTag = "secret"

// mask hides a secret, but still shows whether it is set.
func mask(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// formatRedacted prints w, the method-free twin of a value that holds
// secrets, with its secret fields masked and with the verb and flags that
// f was asked for, so that %v, %+v, %#v, %s and %q all redact.
func formatRedacted[W any](f fmt.State, verb rune, w W) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), redact(w))
}

// marshalRedacted encodes w, the method-free twin of a value that holds
// secrets, with its secret fields masked.
func marshalRedacted[W any](w W) ([]byte, error) {
	return json.Marshal(redact(w))
}

// redact returns a copy of w with every field tagged secret masked, in w
// and in the structs it holds by value (an embedded config, say). It fails
// closed: a w it cannot mask field by field (not a struct, a secret that
// is not an exported string, or a type that formats or marshals itself,
// which would call back here without end) is REDACTED whole.
func redact[W any](w W) any {
	switch any(w).(type) {
	case fmt.Formatter, json.Marshaler:
		return redacted
	}
	v := reflect.ValueOf(&w).Elem()
	if v.Kind() != reflect.Struct || !maskSecrets(v) {
		return redacted
	}
	return w
}

// maskSecrets masks the secret fields of v, a settable struct, and of the
// structs in it. It reports false if a secret cannot be masked. Pointers
// are not followed: what they point to is shared, not a copy.
func maskSecrets(v reflect.Value) bool {
	for i := range v.NumField() {
		f := v.Field(i)
		if _, secret := v.Type().Field(i).Tag.Lookup(secretTag); secret {
			if f.Kind() != reflect.String || !f.CanSet() {
				return false
			}
			f.SetString(mask(f.String()))
		} else if f.Kind() == reflect.Struct && !maskSecrets(f) {
			return false
		}
	}
	return true
}
