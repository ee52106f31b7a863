package oauthflow

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Every Start leaves a flow record in the store for flowTTL. Unbounded, a
// user (or a script with one user's session) could leave a thousand of
// them with a thousand connect calls. So the pending consents are bounded
// per user, per user and connector, and in all. Per user, the newest win:
// the person who clicks Connect again, or on another connector, expects
// that click to work, and completes the consent they started last; the
// oldest are dropped, and their callbacks fail as expired. In all, past
// the bound, Start refuses: only many users at once get there.
const (
	// maxFlowsPerConnector bounds one user's pending consents at one
	// connector.
	maxFlowsPerConnector = 3
	// maxFlowsPerUser bounds one user's pending consents across
	// connectors.
	maxFlowsPerUser = 10
	// defaultMaxFlows bounds the pending consents in the store; past it,
	// Start returns ErrTooManyConsents.
	defaultMaxFlows = 10000
)

// noInitiator stands for the initiator of a flow bound to no one (an
// admin API call) in the keys of the pending index. segment escapes "_",
// so no user's segment can equal it.
const noInitiator = "_none"

// pendingPrefix is where the pending index of the flows that initiator
// started lives: one key per flow, oldest first, which names the flow's
// connector and id, so that bounding them lists keys and reads no record.
func pendingPrefix(initiator string) string {
	if initiator == "" {
		return prefixPending + noInitiator + "/"
	}
	return prefixPending + segment(initiator) + "/"
}

// pendingKey is f's key in the pending index: its creation in fixed-width
// Unix nanoseconds (so that lexical order is age), its connector and its
// flow id.
func pendingKey(f *flowRecord, id string) string {
	return fmt.Sprintf("%s%020d/%s/%s", pendingPrefix(f.Initiator), max(f.Created.UnixNano(), 0), f.Connector, id)
}

// pending is a flow as the pending index names it.
type pending struct {
	created   int64 // Unix nanoseconds
	connector string
	id        string
}

// parsePending reads a key of the pending index, given without its
// prefix.
func parsePending(rest string) (pending, bool) {
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return pending{}, false
	}
	created, err := strconv.ParseInt(parts[0], 10, 64)
	return pending{created, parts[1], parts[2]}, err == nil
}

// putFlow stores f under id, pending for flowTTL, once its initiator's
// older consents beyond the bounds are dropped. It refuses with
// ErrTooManyConsents when the store already holds maxFlows.
func (m *Manager) putFlow(ctx context.Context, f *flowRecord, id string) error {
	// One admission at a time per initiator, in every Manager sharing the
	// Locks, so that concurrent starts cannot pass the bounds together.
	defer m.locks.lock(pendingPrefix(f.Initiator))()
	if err := m.makeRoom(ctx, f); err != nil {
		return err
	}
	flows, err := m.store.List(ctx, prefixFlows)
	if err != nil {
		return fmt.Errorf("counting the pending consents: %w", err)
	}
	if len(flows) >= m.maxFlows {
		m.log.Warn("too many consents are pending: refusing a new one", zap.String("connector", f.Connector),
			zap.String("user", f.Initiator), zap.Int("pending", len(flows)))
		return ErrTooManyConsents
	}
	w, err := jsonWrite(flowKey(id), (*flowWire)(f), flowTTL)
	if err == nil {
		err = writeAll(ctx, m.store, []store.Write{w, {Key: pendingKey(f, id), TTL: flowTTL}})
	}
	if err != nil {
		return fmt.Errorf("storing the consent flow: %w", err)
	}
	return nil
}

// makeRoom drops the oldest pending consents of f's initiator, so that
// with f they keep within maxFlowsPerConnector at f's connector and
// maxFlowsPerUser in all. It makes f the newest: a clock that has not
// moved since the last start (a coarse or a lagging one) moves f's
// creation a nanosecond past it.
func (m *Manager) makeRoom(ctx context.Context, f *flowRecord) error {
	prefix := pendingPrefix(f.Initiator)
	keys, err := m.store.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("listing the pending consents: %w", err)
	}
	total, here := 1, 1 // f
	var drop []store.Write
	for i, key := range slices.Backward(keys) { // the newest first
		p, ok := parsePending(strings.TrimPrefix(key, prefix))
		if ok && i == len(keys)-1 && f.Created.UnixNano() <= p.created {
			f.Created = time.Unix(0, p.created+1).UTC()
		}
		same := p.connector == f.Connector
		if ok && total < maxFlowsPerUser && (!same || here < maxFlowsPerConnector) {
			total++
			if same {
				here++
			}
			continue
		}
		drop = append(drop, store.Write{Key: key, Delete: true})
		if ok {
			drop = append(drop, store.Write{Key: flowKey(p.id), Delete: true})
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := writeAll(ctx, m.store, drop); err != nil {
		return fmt.Errorf("dropping older pending consents: %w", err)
	}
	return nil
}

// forgetFlow deletes the pending index key of f, whose record under id
// was taken or deleted, so that it no longer counts against the bounds.
func (m *Manager) forgetFlow(ctx context.Context, f *flowRecord, id string) {
	if err := m.store.Delete(ctx, pendingKey(f, id)); err != nil {
		m.log.Warn("deleting a pending consent's index key", zap.String("connector", f.Connector), zap.Error(err))
	}
}
