package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Unmarshal decodes data into v, a pointer, the way every parser would
// read it: data must pass Check, and a member whose name matches a field
// of v's struct only without regard to case ("Issuer" for "issuer"), which
// encoding/json would silently accept, is an error. With exact, a member
// that matches no field is an error too.
func Unmarshal(data []byte, v any, exact bool) error {
	if err := Check(data, nil); err != nil {
		return err
	}
	if err := checkSpelling(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if exact {
		dec.DisallowUnknownFields()
	}
	return dec.Decode(v)
}

// checkSpelling refuses a top-level member of data that names a field of
// the struct t points to with other case.
func checkSpelling(data []byte, t reflect.Type) error {
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil {
		return nil // not an object: the decoder says so
	}
	names := fieldNames(t.Elem(), nil)
	for name := range members {
		for _, want := range names {
			if name != want && strings.EqualFold(name, want) {
				return fmt.Errorf("member %s is not spelled %q", quoteName([]byte(name)), want)
			}
		}
	}
	return nil
}

// fieldNames appends the JSON member names of a struct type's fields,
// those of embedded structs included.
func fieldNames(t reflect.Type, names []string) []string {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-", !f.IsExported() && !f.Anonymous:
		case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
			names = fieldNames(f.Type, names)
		case name == "":
			names = append(names, f.Name)
		default:
			names = append(names, name)
		}
	}
	return names
}
