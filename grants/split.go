package grants

import (
	"slices"
	"strings"
	"unicode"
)

// SplitList splits a list on commas and white space (spaces, tabs,
// newlines): sorted, without empty items or duplicates. It is the one
// splitter of every list that people write as text: the groups a
// placeholder gives, and a connector's scopes in the Caddyfile, the admin
// API and the CLI. One function, so that "read,write", "read write" and a
// list pasted one per line mean the same everywhere.
func SplitList(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	slices.Sort(fields)
	return slices.Compact(fields)
}
