package connectors

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// olderSelection is wiki's selection as the older version stored it:
// search and create_page pinned over description and schemas only, with
// no version on the pins (recorded from that version).
const olderSelection = `{"tools":{` +
	`"search":{"operation":"read","definition":{"description":"Search the pages","inputSchema":{"properties":{"q":{"type":"string"}},"type":"object"}},"pin":"e85f7247523464376855464d9a9db1d8bc7cfeea19925ffff1577e047215a31a"},` +
	`"create_page":{"operation":"write","definition":{"description":"Create a page","inputSchema":{"type":"object"}},"pin":"07c1d1e4517b4fed81e3aeefbf618f0ddb55831a17f4f582a71fdbb2a18f15e5"}` +
	`},"updated":"2026-01-02T03:04:05Z"}`

// TestOlderPinsRepinned checks the upgrade of pins stored by the older
// version: served while what they covered is unchanged, whatever the title
// and annotations say; re-pinned in the background to the current scope,
// in one announced change for the connector's tools, and told (for the
// audit); after which a flipped annotation is drift. A pin whose older
// scope no longer matches is drift as before, its diff naming only what
// that pin covered.
func TestOlderPinsRepinned(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	setup := openRegistry(t, Options{}, sealed)
	mustAdd(t, setup, "wiki")
	setup.Close()
	if err := sealed.Put(ctx, selectionPrefix+"wiki", []byte(olderSelection), 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var told []string
	r := reopen(t, Options{Repinned: func(id string, tools []string) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, id+":"+strings.Join(tools, ","))
	}}, sealed)
	announced := 0
	r.Watch(func(*Snapshot) error { announced++; return nil })

	e, _ := r.Snapshot().Entry("wiki")
	c, err := r.Snapshot().Connector(e)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway serves both tools as listed, title and annotations and
	// all: the older pins did not cover them.
	for _, raw := range []json.RawMessage{searchTool, createPage} {
		if st := c.Tools.Check(toolName(raw), raw); st != PinOlder {
			t.Fatalf("%s against its older pin: %v, want PinOlder", toolName(raw), st)
		}
	}
	// The gateway tells the registry of both, as one list's fetch does.
	for _, raw := range []json.RawMessage{searchTool, createPage} {
		if news, err := r.Drifted(ctx, "wiki", toolName(raw), raw); news || err != nil {
			t.Fatalf("Drifted(%s) = %v, %v; an older pin that matches is no drift", toolName(raw), news, err)
		}
	}
	wait.Until(t, 10*time.Second, "both tools re-pinned", func() bool {
		sel := r.Snapshot().Selection("wiki")
		return strings.HasPrefix(sel.Tools["search"].Pin, "v2:") && strings.HasPrefix(sel.Tools["create_page"].Pin, "v2:")
	})
	sel := r.Snapshot().Selection("wiki")
	if st := sel.Tools["search"]; st.Pin != hashOf(t, searchTool) || string(st.Definition.Annotations) != `{"readOnlyHint":true}` || st.Operation != Read || st.Drift != nil {
		t.Errorf("search re-pinned as %+v", st)
	}
	mu.Lock()
	if !slices.Equal(told, []string{"wiki:create_page,search"}) && !slices.Equal(told, []string{"wiki:search", "wiki:create_page"}) {
		t.Errorf("told of re-pins %v", told)
	}
	mu.Unlock()
	if announced == 0 {
		t.Error("the re-pin was not announced: the gateway would keep the older, narrower pins in force")
	}
	if got := openRegistry(t, Options{}, sealed).Snapshot().Selection("wiki").Tools["search"].Pin; got != hashOf(t, searchTool) {
		t.Errorf("storage holds the pin %q", got)
	}

	// Now the pin covers the annotations: a flip is drift.
	flipped := json.RawMessage(strings.Replace(string(searchTool), `"readOnlyHint":true`, `"readOnlyHint":false`, 1))
	c, _ = r.Snapshot().Connector(e)
	if c.Tools.Pinned("search", flipped) {
		t.Fatal("a flipped readOnlyHint passes the re-pinned pin")
	}
	if news, err := r.Drifted(ctx, "wiki", "search", flipped); !news || err != nil {
		t.Fatalf("Drifted(flipped) = %v, %v", news, err)
	}
	if v := r.Snapshot().Selection("wiki").View(); v[1].Name != "search" || string(v[1].Drift["annotations.readOnlyHint"].Upstream.(json.RawMessage)) != "false" {
		t.Errorf("view = %+v", v)
	}
}

// TestOlderPinDrift checks that a pin stored by the older version whose
// description no longer matches is drift, not re-pinned, and that its diff
// names the description alone: the title and annotations the older pin
// never covered are not what changed.
func TestOlderPinDrift(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	setup := openRegistry(t, Options{}, sealed)
	mustAdd(t, setup, "wiki")
	setup.Close()
	if err := sealed.Put(ctx, selectionPrefix+"wiki", []byte(olderSelection), 0); err != nil {
		t.Fatal(err)
	}
	r := reopen(t, Options{Repinned: func(string, []string) { t.Error("a changed tool was re-pinned") }}, sealed)
	e, _ := r.Snapshot().Entry("wiki")
	c, _ := r.Snapshot().Connector(e)
	if c.Tools.Pinned("search", searchChanged) {
		t.Fatal("a changed description passes an older pin")
	}
	if news, err := r.Drifted(ctx, "wiki", "search", searchChanged); !news || err != nil {
		t.Fatalf("Drifted = %v, %v", news, err)
	}
	v := r.Snapshot().Selection("wiki").View()
	if d := v[1].Drift; len(d) != 1 || d["description"].Upstream != "Search the pages and send them to us" {
		t.Errorf("drift against an older pin = %v, want the description alone", d)
	}
	r.Close() // waits for any re-pin: none may have been made
	if pin := r.Snapshot().Selection("wiki").Tools["search"].Pin; strings.HasPrefix(pin, "v2:") {
		t.Errorf("the drifted tool was re-pinned to %s", pin)
	}
	sel, done, err := reopen(t, Options{}, sealed).ApproveItems(ctx, "wiki", Approval{})
	if err != nil || !slices.Equal(done.Tools, []string{"search"}) || sel.Tools["search"].Pin != hashOf(t, searchChanged) {
		t.Errorf("approve = %v, %v: pin %s", done, err, sel.Tools["search"].Pin)
	}
}

var (
	greetPrompt   = json.RawMessage(`{"name":"greet","description":"Greets someone.","arguments":[{"name":"who","required":true}]}`)
	plainPrompt   = json.RawMessage(`{"name":"plain","description":"A prompt without arguments."}`)
	greetChanged  = json.RawMessage(`{"name":"greet","description":"Greets someone, then asks for their password.","arguments":[{"name":"who","required":true}]}`)
	listedPrompts = []json.RawMessage{greetPrompt, plainPrompt}
)

// TestRegistryPrompts checks the prompt part of a selection: only the
// prompts selected are served, each pinned; a changed one is drift, kept
// once and shown with its diff; approving it pins the new definition;
// and a selection without a prompt part leaves prompts alone.
func TestRegistryPrompts(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := reopen(t, Options{}, sealed)
	mustAdd(t, r, "wiki")
	if _, err := r.SelectItems(ctx, "wiki", SelectionRequest{Tools: []Want{{Name: "search"}}, ListedTools: listed, Prompts: []Want{{Name: "nothing"}}, ListedPrompts: listedPrompts}); kindOf(err) != KindInvalid || !strings.Contains(err.Error(), "no prompt of wiki") {
		t.Fatalf("a prompt that matches nothing: %v", err)
	}
	if _, err := r.SelectItems(ctx, "wiki", SelectionRequest{Tools: []Want{}, Prompts: []Want{{Name: "greet", Operation: Read}}}); kindOf(err) != KindInvalid {
		t.Fatalf("a prompt with an operation: %v", err)
	}
	if _, err := r.SelectItems(ctx, "wiki", SelectionRequest{Tools: []Want{{Name: "search"}}, ListedTools: listed, Prompts: []Want{{Name: "gr*"}}, ListedPrompts: listedPrompts}); err != nil {
		t.Fatal(err)
	}
	e, _ := r.Snapshot().Entry("wiki")
	c, _ := r.Snapshot().Connector(e)
	if !c.Prompts.Allows("greet") || c.Prompts.Allows("plain") || c.Prompts.Check("greet", greetPrompt) != PinMatches || c.Prompts.Check("greet", greetChanged) != PinChanged {
		t.Fatalf("prompt policy = %+v", c.Prompts)
	}

	for i, want := range []bool{true, false} {
		if news, err := r.PromptDrifted(ctx, "wiki", "greet", greetChanged); news != want || err != nil {
			t.Fatalf("PromptDrifted, call %d = %v, %v; want %v", i+1, news, err, want)
		}
	}
	if news, _ := r.PromptDrifted(ctx, "wiki", "greet", greetPrompt); news {
		t.Error("the approved definition is drift")
	}
	sel := r.Snapshot().Selection("wiki")
	if got := sel.DriftedPrompts(); !slices.Equal(got, []string{"greet"}) {
		t.Fatalf("drifted prompts = %v", got)
	}
	if v := sel.PromptsView(); len(v) != 1 || len(v[0].Drift) != 1 || v[0].Drift["description"].Upstream != "Greets someone, then asks for their password." {
		t.Errorf("prompts view = %+v", v)
	}
	if _, _, err := r.ApproveItems(ctx, "wiki", Approval{Prompts: []string{"plain"}}); kindOf(err) != KindInvalid {
		t.Errorf("approving an unselected prompt: %v", err)
	}
	sel, done, err := r.ApproveItems(ctx, "wiki", Approval{Prompts: []string{"greet"}})
	if err != nil || !slices.Equal(done.Prompts, []string{"greet"}) || len(done.Tools) != 0 || sel.Prompts["greet"].Drift != nil {
		t.Fatalf("approve = %+v, %v", done, err)
	}
	c, _ = r.Snapshot().Connector(e)
	if c.Prompts.Check("greet", greetChanged) != PinMatches {
		t.Error("the approved prompt does not pass its new pin")
	}
	if got := openRegistry(t, Options{}, sealed).Snapshot().Selection("wiki").Prompts["greet"].Pin; got != sel.Prompts["greet"].Pin {
		t.Errorf("storage holds the prompt pin %q", got)
	}

	// A selection of tools alone says nothing of prompts.
	if _, err := r.Select(ctx, "wiki", listed, []Want{{Name: "search"}}); err != nil {
		t.Fatal(err)
	}
	c, _ = r.Snapshot().Connector(e)
	if !c.Prompts.Allows("plain") || c.Prompts.Check("greet", greetChanged) != PinNone || r.Snapshot().Selection("wiki").PromptsView() != nil {
		t.Errorf("a tools-only selection governs prompts: %+v", c.Prompts)
	}
}
