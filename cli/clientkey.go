package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxClientKey bounds a client key read by --client-key: a PEM RSA key
// of 8192 bits is under 7 KiB.
const maxClientKey = 64 << 10

// clientKey reads --client-key, a PEM private key for private_key_jwt:
// - reads standard input to its end, as a key has several lines; any
// other value is a file the CLI reads, so that the key never sits on a
// command line. The admin API seals it with the connector; nothing
// prints it. Errors never quote it.
func (c *cli) clientKey(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	var r io.Reader = c.in
	where := "standard input"
	if v != "-" {
		f, err := os.Open(v)
		if err != nil {
			return "", fmt.Errorf("--client-key: %v", err)
		}
		defer f.Close()
		r, where = f, v
	}
	b, err := io.ReadAll(io.LimitReader(r, maxClientKey+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("--client-key: reading %s: %v", where, err)
	case len(b) > maxClientKey:
		return "", fmt.Errorf("--client-key: %s holds more than %d bytes, which is no PEM key", where, maxClientKey)
	case strings.TrimSpace(string(b)) == "":
		return "", errors.New("--client-key: " + where + " held no key")
	}
	return strings.TrimSpace(string(b)) + "\n", nil
}
