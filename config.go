package mcpgate

// StorageConfig is where mcpgate keeps its records.
type StorageConfig struct {
	// Backend is "badger" (default), an embedded database.
	Backend string `json:"backend,omitempty"`

	// Path is the database directory. Default: Caddy's data directory
	// + "/mcpgate".
	Path string `json:"path,omitempty"`
}
