// Package approvals keeps the human approvals that calls of chosen tools
// wait for: a request bound to the exact call (caller, connector, tool,
// a SHA-256 of the canonical arguments, the policy generation), which an
// approver approves or denies, and which the matching retry uses once.
// Requests live in a store that several instances share, sealed, since
// they hold the arguments an approver is shown. It knows nothing of
// Caddy or of MCP.
package approvals

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// State is where a request stands: pending, then approved or denied, then
// used or expired.
type State string

// The states of a request.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateDenied   State = "denied"
	StateUsed     State = "used"
	StateExpired  State = "expired"
)

// Binding is the call an approval is for. An approval lets through only a
// call with every field equal: another caller, tool, argument or policy
// needs an approval of its own.
type Binding struct {
	// Caller is the caller's identity.
	Caller string `json:"caller"`
	// Connector is the connector's id.
	Connector string `json:"connector"`
	// Tool is the tool's name at its upstream.
	Tool string `json:"tool"`
	// ArgsSHA256 is the SHA-256, in hex, of the canonical arguments
	// (Canonical, Hash).
	ArgsSHA256 string `json:"args_sha256"`
	// Policy is the generation of the grants that asked for approval, so
	// that an approval given under one policy is not used under another.
	Policy string `json:"policy"`
}

// key is the binding's index key: a hash over its fields, each
// length-prefixed, so that no two bindings share one.
func (b Binding) key() string {
	h := sha256.New()
	for _, f := range []string{b.Caller, b.Connector, b.Tool, b.ArgsSHA256, b.Policy} {
		h.Write([]byte(strconv.Itoa(len(f)) + ":" + f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Request is one approval request, as stored.
type Request struct {
	// ID names the request: 128 random bits, URL-safe base64.
	ID string `json:"id"`
	Binding
	// State is where it stands.
	State State `json:"state"`
	// Arguments are the canonical arguments, shown to approvers only.
	// They never leave the package but through Get and List's detail.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// Created is when the call asked; Expires when the request, or the
	// approval once given, lapses.
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// DecidedBy is who approved or denied it, and Decided when.
	DecidedBy string    `json:"decided_by,omitempty"`
	Decided   time.Time `json:"decided,omitzero"`
}

// lapsed reports whether r, pending or approved, is past its expiry at now.
func (r *Request) lapsed(now time.Time) bool {
	return (r.State == StatePending || r.State == StateApproved) && !now.Before(r.Expires)
}

// Redacted returns r without its arguments, for lists, logs and notices.
func (r Request) Redacted() Request {
	r.Arguments = nil
	return r
}

// newID returns a request id: 128 random bits, URL-safe, unguessable, so
// that an id seen in one place opens nothing but a page that checks who
// looks (an approver) anyway.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the shape newID gives, so that a path
// segment is checked before it becomes a store key.
func ValidID(id string) bool {
	if len(id) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}
