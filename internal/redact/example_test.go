package redact_test

import (
	"fmt"
	"net/http"
	"os"

	"github.com/mcpgate/caddy-mcpgate/internal/redact"
)

func ExampleSecrets_JSON() {
	hide := redact.FromHeader(http.Header{"Authorization": {"Bearer ya29.a0Af/H+x9Zq=="}})
	echo := []byte(`{"content":[{"type":"text","text":"you sent ya29.a0Af\/H\u002Bx9Zq=="}],"n":1}`)
	fmt.Println(string(hide.JSON(echo)))
	// Output: {"content":[{"type":"text","text":"you sent [redacted]"}],"n":1}
}

// An API response body streams through a Writer: a write may end in the
// middle of the credential, which is then held until the rest settles it.
func ExampleSecrets_Writer() {
	hide := redact.FromHeader(http.Header{"X-Api-Key": {"k3y-0123456789"}})
	w := hide.Writer(os.Stdout)
	fmt.Fprint(w, `{"key":"k3y-01234`)
	fmt.Fprint(w, `56789","ok":true}`)
	if err := w.Close(); err != nil {
		fmt.Println(err)
	}
	// Output: {"key":"[redacted]","ok":true}
}
