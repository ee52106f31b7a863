package main

import (
	"context"
	"time"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// answer is the size of an aggregated tools/list as an agent receives it:
// every page, following nextCursor.
type answer struct {
	Catalog string `json:"catalog"`
	Bytes   int64  `json:"bytes"` // the bodies of every page
	Tools   int    `json:"tools"`
	Pages   int    `json:"pages"`
}

// listAnswer sizes the whole tools/list of url as a legacy agent reads it
// (load.ListAnswer).
func listAnswer(ctx context.Context, url string) (answer, error) {
	a, err := load.ListAnswer(ctx, load.Options{URL: url, Timeout: 30 * time.Second})
	return answer{Bytes: a.Bytes, Tools: a.Tools, Pages: a.Pages}, err
}
