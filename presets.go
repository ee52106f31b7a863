package mcpgate

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// PresetConfig describes a remote MCP server that connectors added at run
// time may match by URL, taking its OAuth client and description. A
// preset with the id of a built-in one replaces it.
type PresetConfig struct {
	// ID names the preset, with the connector id grammar.
	ID string `json:"id"`
	// URL is the server's MCP endpoint.
	URL string `json:"url"`
	// ClientID and ClientSecret are an OAuth client registered with the
	// server's authorization server. Placeholders such as {env.*} are
	// expanded. Never shown by the admin API.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	// Title and Description describe the server to people.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
}

// preset is a preset ready to use: from config (with its client resolved)
// or built in.
type preset struct {
	connectors.Preset
	clientID, clientSecret string
	builtin                bool
}

// presetView is a preset as the admin API and the site show it: no
// secret, only whether it has a client.
type presetView struct {
	connectors.Preset
	// Source is "config" or "builtin".
	Source string `json:"source"`
	// HasClient tells whether connectors matching it get a static client.
	HasClient bool `json:"has_client"`
}

func (p preset) view() presetView {
	v := presetView{Preset: p.Preset, Source: "config", HasClient: p.clientID != ""}
	if p.builtin {
		v.Source = "builtin"
	}
	return v
}

// buildPresets checks the config's presets and merges them over the
// built-in catalog, in id order.
func (a *App) buildPresets(repl *caddy.Replacer) ([]preset, error) {
	byID := map[string]preset{}
	for _, p := range connectors.Catalog {
		byID[p.ID] = preset{Preset: p, builtin: true}
	}
	seen := map[string]bool{}
	for i, cfg := range a.Presets {
		if err := connectors.ValidateID(cfg.ID); err != nil {
			return nil, fmt.Errorf("presets[%d]: %v", i, err)
		}
		if seen[cfg.ID] {
			return nil, fmt.Errorf("presets[%d]: preset %q is defined twice", i, cfg.ID)
		}
		seen[cfg.ID] = true
		p := preset{Preset: connectors.Preset{ID: cfg.ID, Title: cfg.Title, Description: cfg.Description}}
		fields := []struct {
			name string
			src  string
			dst  *string
		}{{"url", cfg.URL, &p.URL}, {"client_id", cfg.ClientID, &p.clientID}, {"client_secret", cfg.ClientSecret, &p.clientSecret}}
		for _, f := range fields {
			v, err := repl.ReplaceOrErr(f.src, true, true)
			if err != nil {
				return nil, fmt.Errorf("preset %s: %s: a placeholder is not set", cfg.ID, f.name)
			}
			*f.dst = v
		}
		if _, err := connectors.ParseURL(p.URL); err != nil {
			return nil, fmt.Errorf("preset %s: %v", cfg.ID, err)
		}
		if p.clientSecret != "" && p.clientID == "" {
			return nil, fmt.Errorf("preset %s: client_secret needs client_id", cfg.ID)
		}
		byID[cfg.ID] = p
	}
	out := make([]preset, 0, len(byID))
	for _, p := range byID {
		out = append(out, p)
	}
	slices.SortFunc(out, func(x, y preset) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// matchPreset returns the preset whose URL names the same server as rawURL.
func (a *App) matchPreset(rawURL string) (preset, bool) {
	for _, p := range a.presets {
		if connectors.SameServer(p.URL, rawURL) {
			return p, true
		}
	}
	return preset{}, false
}

// parsePreset parses one preset block:
//
//	preset <id> {
//		url           <url>
//		client_id     <id>
//		client_secret <secret>
//		title         <text>
//		description   <text>
//	}
func parsePreset(d *caddyfile.Dispenser) (PresetConfig, error) {
	var p PresetConfig
	if !d.AllArgs(&p.ID) {
		return p, d.ArgErr()
	}
	if err := connectors.ValidateID(p.ID); err != nil {
		return p, d.WrapErr(err)
	}
	start := d.Token()
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "url":
			err = setString(d, seen, &p.URL, checkURL)
		case "client_id":
			err = setString(d, seen, &p.ClientID, nonEmpty("client_id"))
		case "client_secret":
			err = setString(d, seen, &p.ClientSecret, nonEmpty("client_secret"))
		case "title":
			err = setString(d, seen, &p.Title, nonEmpty("title"))
		case "description":
			err = setString(d, seen, &p.Description, nonEmpty("description"))
		default:
			return p, d.Errf("unrecognized preset option %q", d.Val())
		}
		if err != nil {
			return p, err
		}
	}
	if p.URL == "" {
		return p, errAt(start, "preset %s: url is required", p.ID)
	}
	return p, nil
}

// servePresets answers GET /connectors/presets: the preset catalog, the
// same as the admin API's, with no secret.
func (h *Handler) servePresets(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "GET /connectors/presets lists the presets")
		return nil
	}
	writeJSONBody(w, http.StatusOK, map[string]any{"presets": h.app.presetViews()})
	return nil
}
