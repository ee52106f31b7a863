package connectors

import (
	"context"
	"time"
)

// switchPrefix is where the registry keeps the config connectors that an
// admin disabled at run time: the config itself cannot change at run
// time, so the switch is a record of its own beside it, which every
// instance sharing the storage reads.
const switchPrefix = "runtime/disabled/"

// switchRecord is a config connector disabled at run time.
type switchRecord struct {
	// Since is when it was disabled.
	Since time.Time `json:"since"`
}

// applySwitches disables the config connectors of next that an admin
// disabled at run time. A record of a connector that the config no longer
// has is left alone: another instance may still run a config with it.
// The caller holds r.mu.
func (r *Registry) applySwitches(ctx context.Context, next *Snapshot) error {
	switches, err := readAll[switchRecord](ctx, r.storage, switchPrefix, "disabled connector")
	if err != nil {
		return err
	}
	for i, e := range next.Entries {
		if rec, ok := switches[e.Config.ID]; ok && !e.Runtime {
			next.Entries[i].Config.Disabled, next.Entries[i].Updated = true, rec.Since
		}
	}
	return nil
}

// configEntry returns config connector id as the config declares it,
// without the admin's switch.
func (r *Registry) configEntry(id string) (Entry, bool) {
	for _, e := range r.config {
		if e.Config.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// switchConfig turns config connector old into next, which differs from
// it in Disabled alone. Enabling a connector that the config disables is
// refused: only the config can undo its own word. The caller holds r.mu.
func (r *Registry) switchConfig(old Entry, enabled bool, now time.Time) (Entry, error) {
	declared, _ := r.configEntry(old.Config.ID)
	if enabled && declared.Config.Disabled {
		return Entry{}, errorf(KindConflict, "connector %q is disabled in the config, which the admin API cannot change: remove disabled from its block in the Caddyfile", old.Config.ID)
	}
	next := old
	next.Config.Disabled, next.Updated = !enabled, now
	if enabled {
		next.Updated = time.Time{}
	}
	return next, nil
}

// storeSwitch keeps config connector e's switch: a record while an admin
// has it disabled, none otherwise. The caller holds r.mu.
func (r *Registry) storeSwitch(ctx context.Context, e Entry) error {
	key := switchPrefix + e.Config.ID
	if declared, _ := r.configEntry(e.Config.ID); e.Config.Disabled && !declared.Config.Disabled {
		return r.put(ctx, key, switchRecord{Since: e.Updated})
	}
	return r.remove(ctx, key)
}
