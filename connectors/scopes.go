package connectors

import (
	"bytes"
	"encoding/json"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Scopes are the OAuth scopes a connector requests. In JSON they are a
// list, or one string that grants.SplitList splits on commas and white
// space, as people write them on a command line or paste them from a
// provider's page; an empty string is no list at all (the default).
type Scopes []string

// UnmarshalJSON accepts a list of scopes or one string of them.
func (s *Scopes) UnmarshalJSON(b []byte) error {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		return json.Unmarshal(b, (*[]string)(s))
	}
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return err
	}
	*s = nil
	if list := grants.SplitList(text); len(list) > 0 {
		*s = list
	}
	return nil
}
