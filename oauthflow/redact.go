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

// redact returns a copy of w with every field tagged secret masked. It
// fails closed: a w it cannot mask field by field (not a struct, a secret
// that is not an exported string, or a type that formats or marshals
// itself, which would call back here without end) is REDACTED whole.
func redact[W any](w W) any {
	switch any(w).(type) {
	case fmt.Formatter, json.Marshaler:
		return redacted
	}
	v := reflect.ValueOf(&w).Elem()
	if v.Kind() != reflect.Struct {
		return redacted
	}
	for i := range v.NumField() {
		if _, secret := v.Type().Field(i).Tag.Lookup(secretTag); !secret {
			continue
		}
		f := v.Field(i)
		if f.Kind() != reflect.String || !f.CanSet() {
			return redacted
		}
		f.SetString(mask(f.String()))
	}
	return w
}
