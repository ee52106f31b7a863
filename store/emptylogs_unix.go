//go:build unix

package store

import (
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"
)

// removeEmptyLogs deletes the zero-length value and memtable logs in dir.
// A process killed while creating one leaves it empty, and Badger then
// refuses to open the directory (dgraph-io/badger#2207). An empty log
// holds nothing, and a cleanly closed database has none. It works only
// while it can take the directory lock that Badger itself takes, so that
// it never touches the logs of a database another process has open.
func removeEmptyLogs(dir string, logger *zap.Logger) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	if syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return // in use: opening it will say so
	}
	defer syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
	vlogs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	mems, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
	for _, path := range append(vlogs, mems...) {
		if info, err := os.Stat(path); err == nil && info.Size() == 0 && os.Remove(path) == nil {
			logger.Warn("removed an empty log that an interrupted start left behind", zap.String("file", path))
		}
	}
}
