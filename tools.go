package mcpgate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// toolRegistry is an admin's selection of a connector's tools, as the
// store keeps it: which tools enter the catalog, with which operation,
// pinned to the definitions the admin saw.
type toolRegistry struct {
	// Tools are the registered tools by upstream name.
	Tools map[string]registeredTool `json:"tools"`
	// Updated is when an admin last changed the selection.
	Updated time.Time `json:"updated"`
}

// registeredTool is one tool of a selection.
type registeredTool struct {
	// Operation is the fact the admin chose.
	Operation connectors.Operation `json:"operation"`
	// Definition is what the admin approved; Pin is its hash.
	Definition connectors.ToolDefinition `json:"definition"`
	Pin        string                    `json:"pin"`
	// Drift is the upstream's changed definition, which keeps the tool out
	// of the catalog until an admin approves it.
	Drift *connectors.ToolDefinition `json:"drift,omitempty"`
	// DriftSeen is when the change was first seen.
	DriftSeen time.Time `json:"drift_seen,omitzero"`
}

// toolsPrefix is where tool registries live in the store, sealed like
// every record outside store.ClearPrefix: the key ring rewraps them on a
// rotation, and the key check can open them.
const toolsPrefix = "tools/"

// apply returns c with the selection in force: only registered tools
// enter the catalog (and of those only what the config allows), with the
// admin's operations, each pinned.
func (r toolRegistry) apply(c *connectors.Connector) *connectors.Connector {
	out := *c
	p := connectors.ToolPolicy{
		Allow:      []string{},
		Operations: maps.Clone(c.Tools.Operations),
		Pins:       map[string]string{},
	}
	if p.Operations == nil {
		p.Operations = map[string]connectors.Operation{}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Tools)) {
		if !c.Tools.Allows(name) {
			continue
		}
		t := r.Tools[name]
		p.Allow = append(p.Allow, name)
		p.Operations[name] = t.Operation
		p.Pins[name] = t.Pin
	}
	out.Tools = p
	return &out
}

// loadToolRegistries reads every connector's selection from the store.
func (a *App) loadToolRegistries(ctx context.Context) (map[string]toolRegistry, error) {
	keys, err := a.vault.sealed.List(ctx, toolsPrefix)
	if err != nil {
		return nil, fmt.Errorf("reading the tool selections: %v", err)
	}
	out := make(map[string]toolRegistry, len(keys))
	for _, key := range keys {
		id := strings.TrimPrefix(key, toolsPrefix)
		reg, err := a.toolRegistry(ctx, id)
		if err != nil {
			return nil, err
		}
		if reg != nil {
			out[id] = *reg
		}
	}
	return out, nil
}

// toolRegistry reads connector id's selection, or nil if it has none.
func (a *App) toolRegistry(ctx context.Context, id string) (*toolRegistry, error) {
	raw, err := a.vault.sealed.Get(ctx, toolsPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the tool selection of %s: %v", id, err)
	}
	var reg toolRegistry
	if err := json.Unmarshal(raw, &reg); err != nil {
		return nil, fmt.Errorf("the tool selection of %s is corrupt: %v", id, err)
	}
	return &reg, nil
}

// putToolRegistry stores connector id's selection; nil deletes it.
func (a *App) putToolRegistry(ctx context.Context, id string, reg *toolRegistry) error {
	if reg == nil {
		err := a.vault.sealed.Delete(ctx, toolsPrefix+id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	raw, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	return a.vault.sealed.Put(ctx, toolsPrefix+id, raw, 0)
}

// sealPlainToolRegistries seals the tool selections that earlier versions
// wrote in the clear. A plain one is a JSON object, and no sealed record
// starts with '{' (its first byte is the format version), so a record is
// sealed at most once. Left plain, such a record stopped every rotation's
// rewrap ("unknown version 123").
func sealPlainToolRegistries(ctx context.Context, db store.Store, sealed *store.Sealed) (int, error) {
	keys, err := db.List(ctx, toolsPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range keys {
		raw, err := db.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			continue
		}
		if err := sealed.Put(ctx, key, raw, 0); err != nil {
			return n, fmt.Errorf("sealing the tool selection %s: %v", strings.TrimPrefix(key, toolsPrefix), err)
		}
		n++
	}
	return n, nil
}

// toolDrifted records that a pinned tool's definition changed upstream.
// The mux has already left it out of the catalog; this makes the change
// visible to admins, with what changed.
func (a *App) toolDrifted(connector, tool string, raw json.RawMessage) {
	def, err := connectors.DefinitionOf(raw)
	if err != nil {
		return // a definition that does not parse stays hidden, as drift would
	}
	a.live.mu.Lock()
	defer a.live.mu.Unlock()
	ctx := context.Background()
	reg, err := a.toolRegistry(ctx, connector)
	if err != nil || reg == nil {
		return
	}
	t, ok := reg.Tools[tool]
	if !ok || (t.Drift != nil && t.Drift.Hash() == def.Hash()) {
		return
	}
	t.Drift, t.DriftSeen = &def, time.Now().UTC()
	reg.Tools[tool] = t
	if err := a.putToolRegistry(ctx, connector, reg); err != nil {
		a.logger.Error("recording a tool's drift", zap.String("connector", connector), zap.String("tool", tool), zap.Error(err))
		return
	}
	a.logger.Warn("a registered tool changed upstream and is hidden until an admin approves it",
		zap.String("connector", connector), zap.String("tool", tool))
}

// discoveredTool is one tool as the upstream lists it now, for an admin
// choosing a selection.
type discoveredTool struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Operation is pre-classified from the annotations: read when the
	// upstream says readOnlyHint, else write.
	Operation connectors.Operation `json:"operation"`
	// Registered tells whether the selection has it; Drifted whether its
	// definition differs from the approved one.
	Registered bool `json:"registered"`
	Drifted    bool `json:"drifted,omitempty"`
}

// selectedTool is one tool of a selection as the admin API shows it.
type selectedTool struct {
	Name      string               `json:"name"`
	Operation connectors.Operation `json:"operation"`
	Pin       string               `json:"pin"`
	// Drift shows what changed upstream, field by field, while the tool
	// is hidden awaiting approval.
	Drift     map[string]change `json:"drift,omitempty"`
	DriftSeen time.Time         `json:"drift_seen,omitzero"`
}

// change is one field of a drifted definition, before and after.
type change struct {
	Approved any `json:"approved"`
	Upstream any `json:"upstream"`
}

// diff lists the fields of the definition that changed.
func diff(approved, upstream connectors.ToolDefinition) map[string]change {
	out := map[string]change{}
	if approved.Description != upstream.Description {
		out["description"] = change{approved.Description, upstream.Description}
	}
	for _, f := range []struct {
		name string
		a, u json.RawMessage
	}{{"inputSchema", approved.InputSchema, upstream.InputSchema}, {"outputSchema", approved.OutputSchema, upstream.OutputSchema}} {
		if string(f.a) != string(f.u) {
			out[f.name] = change{f.a, f.u}
		}
	}
	return out
}

// selectionView shows a selection in name order.
func selectionView(reg *toolRegistry) []selectedTool {
	if reg == nil {
		return nil
	}
	out := []selectedTool{}
	for _, name := range slices.Sorted(maps.Keys(reg.Tools)) {
		t := reg.Tools[name]
		st := selectedTool{Name: name, Operation: t.Operation, Pin: t.Pin}
		if t.Drift != nil {
			st.Drift, st.DriftSeen = diff(t.Definition, *t.Drift), t.DriftSeen
		}
		out = append(out, st)
	}
	return out
}

// upstreamTools lists the connector's tools at the upstream, with the
// credential of ?user= (or the shared or static one).
func (a *App) upstreamTools(r *http.Request, g *gateway, c *connectors.Connector) ([]json.RawMessage, error) {
	if c.URL == nil {
		return nil, apiError(http.StatusBadRequest, "connector %s has no MCP server: it has no tools", c.ID)
	}
	user := r.URL.Query().Get("user")
	if cfg, ok := g.oauthConfig(c.ID); ok && cfg.Consent == oauthflow.PerUser && user == "" {
		return nil, apiError(http.StatusBadRequest, "connector %s has per-user consent: say whose credential to list with ?user=<id> (the CLI's --user)", c.ID)
	}
	tools, err := g.mux.UpstreamTools(r.Context(), grants.Caller{ID: user}, c.ID)
	if err != nil {
		var cr *mcpmux.ConsentRequired
		if errors.As(err, &cr) {
			return nil, apiError(http.StatusConflict, "connector %s is not connected: %s", c.ID, cr.Message)
		}
		return nil, apiError(http.StatusBadGateway, "listing the tools of %s: %v", c.ID, err)
	}
	return tools, nil
}

// adminTools answers GET /mcpgate/connectors/{id}/tools: the selection,
// with drift, and with ?discover=1 the upstream's tools now.
func (a *App) adminTools(w http.ResponseWriter, r *http.Request) error {
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	reg, err := a.toolRegistry(r.Context(), c.ID)
	if err != nil {
		return err
	}
	out := toolsAnswer{Connector: c.ID, Selection: selectionView(reg)}
	if d := r.URL.Query().Get("discover"); d == "1" || d == "true" {
		raws, err := a.upstreamTools(r, g, c)
		if err != nil {
			return err
		}
		out.Discovered = []discoveredTool{}
		for _, raw := range raws {
			var t struct {
				Name        string `json:"name"`
				Title       string `json:"title"`
				Description string `json:"description"`
			}
			if json.Unmarshal(raw, &t) != nil {
				continue
			}
			dt := discoveredTool{Name: t.Name, Title: t.Title, Description: t.Description, Operation: c.Tools.Operation(t.Name, mcpmux.ReadOnlyHint(raw))}
			if reg != nil {
				if rt, ok := reg.Tools[t.Name]; ok {
					dt.Registered, dt.Operation = true, rt.Operation
					def, err := connectors.DefinitionOf(raw)
					dt.Drifted = err != nil || def.Hash() != rt.Pin
				}
			}
			out.Discovered = append(out.Discovered, dt)
		}
	}
	return writeAdmin(w, http.StatusOK, out)
}

// registerRequest is the body of PUT /mcpgate/connectors/{id}/tools.
type registerRequest struct {
	// Tools are names or globs (path.Match syntax), each with the
	// operation the admin chose; without one, the annotations decide.
	Tools []registerEntry `json:"tools"`
}

// registerEntry is one tool, or glob of tools, of a selection.
type registerEntry struct {
	Name      string               `json:"name"`
	Operation connectors.Operation `json:"operation,omitempty"`
}

// toolsAnswer is what the tools routes answer: the selection, with what
// the upstream lists now or what was just approved.
type toolsAnswer struct {
	Connector  string           `json:"connector"`
	Selection  []selectedTool   `json:"selection"`
	Discovered []discoveredTool `json:"discovered,omitempty"`
	Approved   []string         `json:"approved,omitempty"`
}

// adminRegisterTools answers PUT /mcpgate/connectors/{id}/tools: it
// registers a selection from the upstream's current tools, pinning each
// definition. Only registered tools then enter the catalog.
func (a *App) adminRegisterTools(w http.ResponseWriter, r *http.Request) error {
	var req registerRequest
	if err := readAdmin(r, &req); err != nil {
		return err
	}
	if req.Tools == nil {
		return apiError(http.StatusBadRequest, `say which tools with {"tools": [{"name": …, "operation": "read"|"write"}]}`)
	}
	for _, t := range req.Tools {
		if err := validToolPattern(t.Name); err != nil {
			return apiError(http.StatusBadRequest, "%v", err)
		}
		if t.Operation != "" {
			if _, err := connectors.ParseOperation(string(t.Operation)); err != nil {
				return apiError(http.StatusBadRequest, "tool %q: %v", t.Name, err)
			}
		}
	}
	a.live.mu.Lock()
	defer a.live.mu.Unlock()
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	raws, err := a.upstreamTools(r, g, c)
	if err != nil {
		return err
	}
	reg := &toolRegistry{Tools: map[string]registeredTool{}, Updated: time.Now().UTC()}
	matched := make([]bool, len(req.Tools))
	for _, raw := range raws {
		var t struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		for i, want := range req.Tools { // the last entry that matches decides
			if ok, _ := path.Match(want.Name, t.Name); !ok {
				continue
			}
			def, err := connectors.DefinitionOf(raw)
			if err != nil {
				return apiError(http.StatusBadGateway, "tool %s of %s has a malformed definition: %v", t.Name, c.ID, err)
			}
			op := cmp.Or(want.Operation, c.Tools.Operation(t.Name, mcpmux.ReadOnlyHint(raw)))
			reg.Tools[t.Name] = registeredTool{Operation: op, Definition: def, Pin: def.Hash()}
			matched[i] = true
		}
	}
	if i := slices.Index(matched, false); i >= 0 {
		return apiError(http.StatusBadRequest, "no tool of %s matches %q", c.ID, req.Tools[i].Name)
	}
	if err := a.putToolRegistry(r.Context(), c.ID, reg); err != nil {
		return apiError(http.StatusInternalServerError, "storing the tool selection of %s: %v", c.ID, err)
	}
	if err := a.rebuild(g.runtime); err != nil {
		return err
	}
	a.recordAdmin("", c.ID, adminDetail(r, fmt.Sprintf("registered a selection of %d tools", len(reg.Tools))))
	return writeAdmin(w, http.StatusOK, toolsAnswer{Connector: c.ID, Selection: selectionView(reg)})
}

// approveRequest is the body of POST /mcpgate/connectors/{id}/tools/approve.
type approveRequest struct {
	// Tools are the drifted tools to approve; none means all of them.
	Tools []string `json:"tools,omitempty"`
}

// adminApproveTools answers POST /mcpgate/connectors/{id}/tools/approve:
// each drifted tool named is pinned to its new definition and returns to
// the catalog.
func (a *App) adminApproveTools(w http.ResponseWriter, r *http.Request) error {
	var req approveRequest
	if r.ContentLength != 0 {
		if err := readAdmin(r, &req); err != nil {
			return err
		}
	}
	a.live.mu.Lock()
	defer a.live.mu.Unlock()
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	reg, err := a.toolRegistry(r.Context(), c.ID)
	if err != nil {
		return err
	}
	if reg == nil {
		return apiError(http.StatusNotFound, "connector %s has no tool selection", c.ID)
	}
	names := req.Tools
	if len(names) == 0 {
		for name, t := range reg.Tools {
			if t.Drift != nil {
				names = append(names, name)
			}
		}
	}
	for _, name := range names {
		t, ok := reg.Tools[name]
		if !ok || t.Drift == nil {
			return apiError(http.StatusBadRequest, "tool %s of %s has not drifted", name, c.ID)
		}
		t.Definition, t.Pin, t.Drift, t.DriftSeen = *t.Drift, t.Drift.Hash(), nil, time.Time{}
		reg.Tools[name] = t
	}
	reg.Updated = time.Now().UTC()
	if err := a.putToolRegistry(r.Context(), c.ID, reg); err != nil {
		return apiError(http.StatusInternalServerError, "storing the tool selection of %s: %v", c.ID, err)
	}
	if err := a.rebuild(g.runtime); err != nil {
		return err
	}
	slices.Sort(names)
	a.recordAdmin("", c.ID, adminDetail(r, "approved the changed tools "+strings.Join(names, ", ")))
	return writeAdmin(w, http.StatusOK, toolsAnswer{Connector: c.ID, Selection: selectionView(reg), Approved: names})
}
