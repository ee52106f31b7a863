//go:build !unix

package store

import "go.uber.org/zap"

// removeEmptyLogs does nothing where the directory lock cannot be taken
// first: an empty log left by a killed start then needs removing by hand.
func removeEmptyLogs(string, *zap.Logger) {}
