package postgres

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// sweepEvery is how often an instance deletes expired records. Reads
// never see them anyway; sweeping only keeps the table from growing with
// consent flows and sessions that were never taken.
const sweepEvery = 5 * time.Minute

// sweepSQL deletes up to a thousand expired records, so that one sweep
// holds its row locks briefly; the next sweep takes the rest.
const sweepSQL = `DELETE FROM mcpgate_records WHERE key IN (
	SELECT key FROM mcpgate_records WHERE expires_at <= now() LIMIT 1000 FOR UPDATE SKIP LOCKED)`

// sweep deletes expired records every sweepEvery until ctx ends.
func (s *Store) sweep(ctx context.Context) {
	ticker := time.NewTicker(sweepEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if _, err := s.sweepOnce(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("deleting expired records", zap.Error(err))
		}
	}
}

// sweepOnce deletes expired records once and says how many.
func (s *Store) sweepOnce(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, sweepSQL)
	if err != nil {
		return 0, s.wrap("sweeping", "mcpgate_records", err)
	}
	return tag.RowsAffected(), nil
}
