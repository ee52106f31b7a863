package connectors

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// expandEnv is the Expander of the tests: {env.NAME} placeholders, an
// unset one an error, as Caddy's replacer does it.
func expandEnv(s string) (string, error) {
	name, ok := strings.CutPrefix(s, "{env.")
	if !ok {
		return s, nil
	}
	name, rest, _ := strings.Cut(name, "}")
	v, set := os.LookupEnv(name)
	if !set {
		return "", errors.New("unset")
	}
	return v + rest, nil
}

// registry builds a registry of the presets, expanded with expandEnv.
func presetRegistry(presets []PresetConfig) (*Registry, error) {
	for i, p := range presets {
		var err error
		if presets[i], err = p.Expanded(expandEnv); err != nil {
			return nil, err
		}
	}
	return NewRegistry(Options{Presets: presets})
}

// TestPresets checks the config's presets: merged over the built-in
// catalog, their placeholders expanded, and bad ones refused with a
// message that names the preset and never a secret.
func TestPresets(t *testing.T) {
	t.Setenv("MCPGATE_TEST_SECRET", "s3cr3t")
	r, err := presetRegistry([]PresetConfig{
		{ID: "notion", URL: "https://notion.example.com/mcp", ClientID: "id", ClientSecret: "{env.MCPGATE_TEST_SECRET}", Title: "Our Notion"},
		{ID: "internal", URL: "https://mcp.internal.example/mcp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]preset{}
	for _, p := range r.presets {
		byID[p.ID] = p
	}
	if p := byID["notion"]; p.builtin || p.clientSecret != "s3cr3t" || p.URL != "https://notion.example.com/mcp" {
		t.Errorf("notion = %+v: the config's preset must replace the built-in one", p.Preset)
	}
	if p := byID["linear"]; !p.builtin {
		t.Errorf("the built-in linear preset is missing: %+v", p)
	}
	if p, ok := r.matchPreset("https://MCP.internal.example/mcp/"); !ok || p.ID != "internal" {
		t.Errorf("matchPreset = %v %v", p.ID, ok)
	}
	for _, v := range r.Presets() {
		if v.ID == "notion" && (!v.HasClient || v.Source != "config") {
			t.Errorf("view of notion = %+v", v)
		}
	}

	for _, tc := range []struct {
		name string
		p    []PresetConfig
		want string
	}{
		{"bad id", []PresetConfig{{ID: "No", URL: "https://x.example/mcp"}}, "must match"},
		{"twice", []PresetConfig{{ID: "x", URL: "https://x.example/mcp"}, {ID: "x", URL: "https://y.example/mcp"}}, `preset "x" is defined twice`},
		{"bad url", []PresetConfig{{ID: "x", URL: "x.example"}}, "preset x"},
		{"unset placeholder", []PresetConfig{{ID: "x", URL: "https://x.example/mcp", ClientID: "{env.MCPGATE_UNSET_FOR_TEST}"}}, "preset x: client_id: a placeholder is not set"},
		{"secret without id", []PresetConfig{{ID: "x", URL: "https://x.example/mcp", ClientSecret: "{env.MCPGATE_TEST_SECRET}"}}, "client_secret needs client_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := presetRegistry(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestBuiltinPresets checks the built-in catalog: GitHub, Stripe and Box
// are in it, those that register no client of their own say so, and a
// config can leave the catalog out, keeping only its own presets.
func TestBuiltinPresets(t *testing.T) {
	r, err := NewRegistry(Options{})
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]PresetView{}
	for _, v := range r.Presets() {
		views[v.ID] = v
	}
	for id, needsClient := range map[string]bool{"github": true, "box": true, "stripe": false, "notion": false} {
		v, ok := views[id]
		if !ok || v.Source != "builtin" || v.NeedsClient != needsClient || v.HasClient {
			t.Errorf("%s = %+v, %v; want built in, needs_client %v", id, v, ok, needsClient)
		}
	}
	if p, ok := r.matchPreset("https://API.githubcopilot.com/mcp"); !ok || p.ID != "github" {
		t.Errorf("GitHub's URL matches %q, %v", p.ID, ok)
	}

	own := []PresetConfig{{ID: "internal", URL: "https://mcp.internal.example/mcp"}}
	r, err = NewRegistry(Options{Presets: own, NoBuiltinPresets: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Presets(); len(got) != 1 || got[0].ID != "internal" {
		t.Errorf("without the catalog the presets are %+v", got)
	}
	if _, ok := r.matchPreset("https://mcp.notion.com/mcp"); ok {
		t.Error("a built-in preset matched with the catalog left out")
	}
}
