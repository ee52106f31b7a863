package connectors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Instances that share a store follow each other's changes to the
// registry: each change bumps a shared generation counter and sends a
// notice; an instance that hears another's notice reloads at once, and
// one that polls the counter reloads when it moved, which bounds how long
// a lost notice can delay a change.

const (
	// changesChannel carries the notices; the payload is the sending
	// registry's id, so that a registry ignores its own.
	changesChannel = "mcpgate_registry"
	// generationKey is the shared counter of changes.
	generationKey = "registry/generation"
	// reloadTimeout bounds one reload done in the background.
	reloadTimeout = 30 * time.Second
)

// follow starts following the other instances that share r's storage:
// their notices if it carries them, and the shared generation every
// r.poll if it counts and r.poll is set. Close stops it. The caller
// holds r.mu.
func (r *Registry) follow() {
	notifier, notifies := r.storage.(store.Notifier)
	adder, counts := r.storage.(store.Adder)
	if !notifies && !(counts && r.poll > 0) {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	kick := make(chan struct{}, 1)
	done := make(chan struct{})
	r.stop = func() { stop(); <-done }
	if notifies {
		err := notifier.Subscribe(ctx, changesChannel, func(from string) {
			if from != r.id {
				nudge(kick)
			}
		})
		if err != nil {
			r.failed(err)
		}
	}
	go func() {
		defer close(done)
		var tick <-chan time.Time
		if counts && r.poll > 0 {
			t := time.NewTicker(r.poll)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			case <-tick:
				n, err := adder.Add(ctx, generationKey, 0)
				if err != nil || n == r.seen.Load() {
					if err != nil && ctx.Err() == nil {
						r.failed(err)
					}
					continue
				}
			}
			r.reloadShared(ctx)
		}
	}()
}

// nudge asks for a reload without blocking: one pending is enough, since
// a reload reads everything.
func nudge(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// reloadShared reloads what other instances changed, noting the shared
// generation first so that a change made during the reload is seen by
// the next poll.
func (r *Registry) reloadShared(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if adder, ok := r.storage.(store.Adder); ok {
		if n, err := adder.Add(ctx, generationKey, 0); err == nil {
			r.seen.Store(n)
		}
	}
	if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
		r.failed(err)
	}
}

// tell tells the other instances that r changed: it bumps the shared
// generation, noting it as seen, and sends a notice. A failure is
// reported, not returned: the change is made and kept, and the others
// find it at their next poll.
func (r *Registry) tell(ctx context.Context) {
	if adder, ok := r.storage.(store.Adder); ok {
		n, err := adder.Add(ctx, generationKey, 1)
		if err != nil {
			r.failed(err)
		} else {
			r.seen.Store(n)
		}
	}
	if notifier, ok := r.storage.(store.Notifier); ok {
		if err := notifier.Notify(ctx, changesChannel, r.id); err != nil {
			r.failed(err)
		}
	}
}

// failed reports an error of the background work.
func (r *Registry) failed(err error) {
	if r.errors != nil {
		r.errors(err)
	}
}

// Close stops following the other instances and the pin work (re-pins,
// drift records), and waits for a reload or pin work under way.
func (r *Registry) Close() {
	r.closeQueue()
	r.mu.Lock()
	stop := r.stop
	r.stop = nil
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// newRegistryID names a registry in its notices.
func newRegistryID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
