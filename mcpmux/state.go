package mcpmux

import (
	"encoding/json"
	"strings"
	"time"
)

// statePrefix marks a requestState the gateway issued, as opposed to one
// an upstream issued, which goes back to that upstream untouched. The 1
// is the format's version, so that a later format can tell its own.
const statePrefix = "mcpgate1."

// stateTTL is how long an agent has to answer the gateway's input
// request, such as a consent in the browser, and retry: long enough to
// sign in at a provider, short enough to bound a replay (Multi Round-Trip
// Requests, "Server Requirements": a short expiry).
const stateTTL = 30 * time.Minute

// gatewayState is what the gateway's own requestState holds: the request
// it belongs to, and the upstream's requestState it stood in for with the
// input responses that went with it, if any, for the upstream to get back.
// Its JSON names are one letter: the state travels in every retry.
type gatewayState struct {
	Method    string          `json:"m"`
	Name      string          `json:"n,omitempty"`
	Expires   int64           `json:"x"`
	Inner     string          `json:"s,omitempty"`
	Responses json.RawMessage `json:"r,omitempty"`
	// Parked names a parked call and Key the question it was given (see
	// park.go).
	Parked string `json:"p,omitempty"`
	Key    string `json:"k,omitempty"`
}

// stateSealer seals the gateway's requestStates (see sealer).
type stateSealer struct{ sealer }

// newStateSealer builds a sealer from a key, or a random key when key is
// nil (states then die with the Mux).
func newStateSealer(key []byte) (stateSealer, error) {
	s, err := newSealer(key)
	return stateSealer{s}, err
}

// seal returns st as a requestState for caller.
func (s stateSealer) seal(caller string, st gatewayState) string {
	return s.sealJSON(statePrefix, caller, st)
}

// open reads a requestState of the gateway's for caller, or fails: an
// expired one fails as a forged one does.
func (s stateSealer) open(caller, state string, now time.Time) (gatewayState, bool) {
	var st gatewayState
	ok := s.openJSON(statePrefix, caller, state, &st)
	return st, ok && now.Unix() <= st.Expires
}

// takeState handles the requestState of a retried 2026-07-28 request. One
// that names a parked call is returned, for resume.
// One the gateway issued must be this caller's, for this method and name,
// and unexpired; it is then replaced by the upstream's state it stood in
// for (or removed), and the answers to the gateway's own input requests
// are removed, so that the upstream sees the request it would have seen.
// Any other requestState is the upstream's and stays.
func (m *Mux) takeState(x *exchange, params []byte) ([]byte, *gatewayState, *rpcError) {
	// Not the gateway's: the upstream's own, which the gateway neither
	// can read nor should; the upstream guards it itself.
	state, _ := stringMember(params, "requestState")
	if !strings.HasPrefix(state, statePrefix) {
		return params, nil, nil
	}
	// Bound to the request it was issued for: a state for one tool
	// cannot carry a consent or an answer over to another (Multi
	// Round-Trip Requests, "Server Requirements": the originating request).
	st, ok := m.states.open(x.caller.ID, state, m.now())
	name, _ := stringMember(params, nameKey(x.method))
	if !ok || st.Method != x.method || st.Name != name {
		return nil, nil, errorf(codeInvalidParams, "requestState is not one this gateway issued for this request and caller, or it has expired: send the request again without it")
	}
	if st.Parked != "" {
		return params, &st, nil
	}
	inner := []byte(nil)
	if st.Inner != "" {
		inner = quote(st.Inner)
	}
	out, err := setMember(params, "requestState", inner)
	if err != nil {
		return nil, nil, errorf(codeInvalidParams, "params must be an object")
	}
	out, _ = setMember(out, "inputResponses", mergeResponses(st.Responses, member(out, "inputResponses")))
	return out, nil, nil
}

// mergeResponses is the inputResponses the upstream gets on a retry: those
// the request the gateway stood in for carried, and those of the retry,
// but for the answers to the gateway's own input requests. Nil if none.
func mergeResponses(earlier, retry []byte) []byte {
	out := []byte(`{}`)
	for _, from := range [][]byte{earlier, retry} {
		_ = members(from, func(key string, v span) bool {
			if !strings.HasPrefix(key, gatewayInputPrefix) {
				out, _ = setMember(out, key, from[v.start:v.end])
			}
			return true
		})
	}
	if string(out) == "{}" {
		return nil
	}
	return out
}

// gatewayInputPrefix begins the keys of the gateway's own input requests.
const gatewayInputPrefix = "mcpgate-"

// nameKey is the params member that names what a request is about.
func nameKey(method string) string {
	if method == "resources/read" {
		return "uri"
	}
	return "name"
}
