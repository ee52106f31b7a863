package oauthflow

import "fmt"

// redacted is what a secret prints as.
const redacted = "REDACTED"

// mask hides a secret, but still shows whether it is set.
func mask(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// formatMasked prints v, a method-free copy whose secrets are already
// masked, with the verb and flags that f was asked for. Types that hold
// secrets implement fmt.Formatter with it, so that %v, %+v, %#v and %s all
// redact.
func formatMasked(f fmt.State, verb rune, v any) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), v)
}
