package connectors

import "cmp"

// describe gives a config connector its title and description for people:
// its own, else those of the preset whose URL its own matches, as a
// runtime connector added at that URL gets them.
func (r *Registry) describe(e *Entry) {
	e.Title, e.Description = e.Config.Title, e.Config.Description
	p, ok := r.matchPreset(e.Config.URL)
	if !ok || e.Config.URL == "" {
		return
	}
	e.Preset = p.ID
	e.Title = cmp.Or(e.Title, p.Title)
	e.Description = cmp.Or(e.Description, p.Description)
}
