package mcpgate

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestBuildPresets checks the config's presets: merged over the built-in
// catalog, their placeholders expanded, and bad ones refused with a
// message that names the preset and never a secret.
func TestBuildPresets(t *testing.T) {
	t.Setenv("MCPGATE_TEST_SECRET", "s3cr3t")
	a := &App{Presets: []PresetConfig{
		{ID: "notion", URL: "https://notion.example.com/mcp", ClientID: "id", ClientSecret: "{env.MCPGATE_TEST_SECRET}", Title: "Our Notion"},
		{ID: "internal", URL: "https://mcp.internal.example/mcp"},
	}}
	presets, err := a.buildPresets(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	a.presets = presets
	byID := map[string]preset{}
	for _, p := range presets {
		byID[p.ID] = p
	}
	if p := byID["notion"]; p.builtin || p.clientSecret != "s3cr3t" || p.URL != "https://notion.example.com/mcp" {
		t.Errorf("notion = %+v: the config's preset must replace the built-in one", p.Preset)
	}
	if p := byID["linear"]; !p.builtin {
		t.Errorf("the built-in linear preset is missing: %+v", p)
	}
	if p, ok := a.matchPreset("https://MCP.internal.example/mcp/"); !ok || p.ID != "internal" {
		t.Errorf("matchPreset = %v %v", p.ID, ok)
	}
	for _, v := range a.presetViews() {
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
			_, err := (&App{Presets: tc.p}).buildPresets(caddy.NewReplacer())
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
