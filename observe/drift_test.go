package observe

import (
	"context"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// TestDriftEvent checks that a drift seen is an audit event of its own
// kind, kept in a class of its own apart from the admin changes, naming
// the connector, the item and the fields that changed.
func TestDriftEvent(t *testing.T) {
	o, _ := newObserver(t, nil)
	o.Drift(connectors.DriftNotice{Connector: "wiki", Kind: connectors.ToolPin, Name: "delete_everything",
		Fields: []string{"annotations.destructiveHint", "annotations.readOnlyHint"}})
	o.Drift(connectors.DriftNotice{Connector: "wiki", Kind: connectors.PromptPin, Name: "greet", Fields: []string{"description"}})
	o.AdminChange("bob", "wiki", "approved")
	evs, err := o.Query(context.Background(), audit.Filter{Kind: audit.KindDrift})
	if err != nil {
		t.Fatal(err)
	}
	want := []audit.Event{
		{Kind: audit.KindDrift, Connector: "wiki", Outcome: "hidden",
			Detail: "prompt greet changed upstream (description); hidden until an admin approves it"},
		{Kind: audit.KindDrift, Connector: "wiki", Tool: "delete_everything", Outcome: "hidden",
			Detail: "tool delete_everything changed upstream (annotations.destructiveHint, annotations.readOnlyHint); hidden until an admin approves it"},
	}
	if len(evs) != len(want) {
		t.Fatalf("drift events = %+v, want %+v", evs, want)
	}
	for i, e := range evs {
		if e.Time.IsZero() || e.Class() != "drift" {
			t.Errorf("event %d: time %v, class %s; want a time and the drift class", i, e.Time, e.Class())
		}
		e.Time = want[i].Time
		if e != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, e, want[i])
		}
	}
}
