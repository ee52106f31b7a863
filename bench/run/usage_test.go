package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
)

// TestTreeCPU: the CPU that a PostgreSQL backend spends on a query counts
// in its postmaster's treeCPU, and still counts once the connection ends
// and the postmaster has reaped the backend.
func TestTreeCPU(t *testing.T) {
	ctx := context.Background()
	tick := clockTick()
	s := pgtest.NewServer(t)
	before, err := treeCPU(s.PID(), tick)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	// Work until the backend has used a measurable 200 ms of CPU.
	var spent time.Duration
	for spent < 200*time.Millisecond {
		if _, err := conn.Exec(ctx, "SELECT sum(i) FROM generate_series(1, 2000000) i"); err != nil {
			t.Fatal(err)
		}
		st, err := readStat(backend)
		if err != nil {
			t.Fatal(err)
		}
		spent = time.Duration(st.utime+st.stime) * tick
	}
	during, err := treeCPU(s.PID(), tick)
	if err != nil {
		t.Fatal(err)
	}
	if during-before < spent {
		t.Errorf("treeCPU grew by %v while the backend spent %v", during-before, spent)
	}
	conn.Close(ctx)
	waitGone(t, backend)
	after, err := treeCPU(s.PID(), tick)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < spent {
		t.Errorf("once the backend was reaped, treeCPU had grown by %v, want at least the backend's %v", after-before, spent)
	}
}

// waitGone waits until the process pid has exited and been reaped.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there after 30 s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTreeCPUMissing: a process that does not exist is an error, not a
// zero that would read as a database which spent nothing.
func TestTreeCPUMissing(t *testing.T) {
	if _, err := treeCPU(1<<30, clockTick()); err == nil {
		t.Error("treeCPU of a missing process: no error")
	}
}
