package mcpmux

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/internal/textcut"
)

// maxNameLen is the longest tool or prompt name many clients accept. The
// spec suggests up to 128 (Tools, "Tool Names"), but agents hand tool names
// on to model APIs, and OpenAI's function names stop at 64.
const maxNameLen = 64

// names joins and splits "<connector><sep><name>". Connector ids have no
// underscore, so the first underscore always starts the separator and a
// name may itself contain any number of them.
type names struct{ sep string }

// wire returns the name an agent sees for connector's item. A joined name
// longer than 64 bytes is cut and given a hash of the whole, so that it is
// short, deterministic and stable across restarts and gateways.
func (n names) wire(connector, name string) string {
	full := connector + n.sep + name
	if len(full) <= maxNameLen {
		return full
	}
	// A hash of the whole name, not a counter: the same tool gets the same
	// name on every gateway and after every restart, so agents' saved
	// references and audit lines stay valid. textcut keeps the cut on a
	// rune boundary.
	sum := sha256.Sum256([]byte(full))
	suffix := "-" + hex.EncodeToString(sum[:4])
	return textcut.Prefix(full, maxNameLen-len(suffix)) + suffix
}

// connector returns the connector part of a wire name. Split at the first
// underscore, which no connector id holds, so that "a_b_c" is connector
// "a" and tool "b_c", never "a_b" and "c": a name cannot be made to route
// to another connector (the separator collisions of other gateways).
func (n names) connector(wire string) (string, bool) {
	i := strings.IndexByte(wire, '_')
	if i <= 0 || !strings.HasPrefix(wire[i:], n.sep) {
		return "", false
	}
	return wire[:i], true
}
