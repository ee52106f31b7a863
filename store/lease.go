package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// leasePrefix starts the keys of the records under which a backend that
// keeps leases among its records (Badger) keeps them: internal, so that
// no caller can forge or list one.
const leasePrefix = internalPrefix + "lease/"

// leaseState is what a backend keeps per lease name. It outlives the
// lease: token is the last one handed out, kept after a release or an
// expiry, so that the next acquisition's token is greater. A fencing
// token that repeated could let a holder whose lease was lost pass for
// the current one.
type leaseState struct {
	holder  string    // empty once released
	token   uint64    // the last token handed out
	expires time.Time // zero once released
}

// leaseOp is one lease operation on the state of one name, at now. It
// reports whether the state changed and must be stored.
type leaseOp func(s *leaseState, now time.Time) (bool, error)

// leaseRunner runs op on the state of the lease on name in one
// transaction of a backend, storing the state if op changed it.
type leaseRunner func(name string, op leaseOp) error

// heldAt reports whether the lease is held, unexpired, at now.
func (s *leaseState) heldAt(now time.Time) bool {
	return s.holder != "" && now.Before(s.expires)
}

// matches reports whether l is the lease held at now.
func (s *leaseState) matches(l Lease, now time.Time) bool {
	return s.heldAt(now) && s.holder == l.Holder && s.token == l.Token
}

func (s *leaseState) lease(name string) Lease {
	return Lease{Name: name, Holder: s.holder, Token: s.token, Expires: s.expires}
}

// acquireLease takes the lease on name for holder through run. A holder
// that holds it unexpired keeps its token; a lease that expired is lost
// to its holder too, who gets a new token like anyone else.
func acquireLease(run leaseRunner, name, holder string, ttl time.Duration) (Lease, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return Lease{}, err
	}
	var l Lease
	err := run(name, func(s *leaseState, now time.Time) (bool, error) {
		if s.heldAt(now) && s.holder != holder {
			return false, ErrLeaseHeld
		}
		if !s.heldAt(now) {
			s.holder, s.token = holder, s.token+1
		}
		s.expires = now.Add(ttl)
		l = s.lease(name)
		return true, nil
	})
	return l, err
}

// renewLease extends l through run while it is still held. Renewal is
// strict: a lease that expired is lost even if no one took it, since its
// holder cannot know that no one did.
func renewLease(run leaseRunner, l Lease, ttl time.Duration) (Lease, error) {
	if err := checkLease(l.Name, l.Holder, ttl); err != nil {
		return Lease{}, err
	}
	var renewed Lease
	err := run(l.Name, func(s *leaseState, now time.Time) (bool, error) {
		if !s.matches(l, now) {
			return false, ErrLeaseLost
		}
		s.expires = now.Add(ttl)
		renewed = s.lease(l.Name)
		return true, nil
	})
	return renewed, err
}

// releaseLease gives up l through run if it is still held, keeping the
// token so that the next acquisition's is greater.
func releaseLease(run leaseRunner, l Lease) error {
	if err := CheckKey(l.Name); err != nil {
		return fmt.Errorf("store: lease name: %w", err)
	}
	return run(l.Name, func(s *leaseState, now time.Time) (bool, error) {
		if !s.matches(l, now) {
			return false, nil
		}
		s.holder, s.expires = "", time.Time{}
		return true, nil
	})
}

// checkLease checks the arguments of Acquire and Renew.
func checkLease(name, holder string, ttl time.Duration) error {
	if err := CheckKey(name); err != nil {
		return fmt.Errorf("store: lease name: %w", err)
	}
	if holder == "" {
		return errors.New("store: lease holder is empty")
	}
	if ttl <= 0 {
		return fmt.Errorf("store: lease ttl %v is not above zero", ttl)
	}
	return nil
}

// encode lays the state out as a record: the token and the expiry in
// Unix nanoseconds (0 once released), 8 bytes each big-endian, then the
// holder.
func (s *leaseState) encode() []byte {
	var expires int64
	if !s.expires.IsZero() {
		expires = s.expires.UnixNano()
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16+len(s.holder)), s.token)
	b = binary.BigEndian.AppendUint64(b, uint64(expires))
	return append(b, s.holder...)
}

// decodeLease reads a record that encode wrote.
func decodeLease(b []byte) (leaseState, error) {
	if len(b) < 16 {
		return leaseState{}, fmt.Errorf("%w: a lease record has at least 16 bytes, not %d", ErrTampered, len(b))
	}
	s := leaseState{token: binary.BigEndian.Uint64(b), holder: string(b[16:])}
	if ns := int64(binary.BigEndian.Uint64(b[8:])); ns != 0 {
		s.expires = time.Unix(0, ns)
	}
	return s, nil
}
