package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// The crash test runs its child, TestCrashChild, in a copy of this test
// binary; these variables select child mode and pass it its work.
const (
	crashDirEnv   = "MCPGATE_STORE_CRASH_DIR"
	crashStartEnv = "MCPGATE_STORE_CRASH_START"
)

func crashKey(seq int) string      { return fmt.Sprintf("crash/%08d", seq) }
func crashValue(seq int) []byte    { return fmt.Appendf(nil, "value of record %d", seq) }
func crashRing(t testing.TB) *Ring { return testRing(t, 7) }

// TestCrash checks crash safety: a child writes records through Sealed over
// Badger and reports each acknowledged Put; the parent kills it with
// SIGKILL at a random moment, reopens the directory and checks that every
// acknowledged record is there and opens to its value.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	var acked []int
	next := 0
	for i := range 50 {
		// Most kills land in the write loop; every fifth may land while the
		// child is still opening (and replaying) the database.
		seqs := runCrashChild(t, dir, next, i%5 == 0)
		b, err := OpenBadger(dir, nil)
		if err != nil {
			t.Fatalf("iteration %d: reopening after the kill: %v", i, err)
		}
		s := Seal(b, crashRing(t))
		if err := s.Check(ctx); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		checkCrashRecords(t, s, seqs)
		b.Close()
		acked = append(acked, seqs...)
		if len(seqs) > 0 {
			next = seqs[len(seqs)-1] + 1
		}
	}
	b := openBadger(t, dir)
	s := Seal(b, crashRing(t))
	checkCrashRecords(t, s, acked)
	// The wrap count never falls below the wraps made: a kill loses the
	// rest of a reserved block, never a wrap. The key check is one wrap
	// more.
	if wraps := storedWraps(t, s); wraps < uint64(len(acked)+1) {
		t.Errorf("%d wraps counted, %d acknowledged", wraps, len(acked)+1)
	}
	t.Logf("%d acknowledged records survived 50 kills", len(acked))
}

func checkCrashRecords(t *testing.T, s Store, seqs []int) {
	t.Helper()
	for _, seq := range seqs {
		got, err := s.Get(context.Background(), crashKey(seq))
		if err != nil || !bytes.Equal(got, crashValue(seq)) {
			t.Fatalf("acknowledged record %d = %q, %v", seq, got, err)
		}
	}
}

// runCrashChild starts the child writing from start, kills it and returns
// the sequence numbers it acknowledged.
func runCrashChild(t *testing.T, dir string, start int, early bool) []int {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(start))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		for sc := bufio.NewScanner(out); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	kill := time.After(rand.N(100 * time.Millisecond))
	if !early {
		kill = nil // armed at the first acknowledgement
	}
	var seqs []int
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				return seqs
			}
			seq, err := strconv.Atoi(line)
			if err != nil {
				cmd.Process.Kill()
				t.Fatalf("child: %s\n%s", line, stderr.Bytes())
			}
			if kill == nil {
				kill = time.After(rand.N(30 * time.Millisecond))
			}
			seqs = append(seqs, seq)
		case <-kill:
			cmd.Process.Kill()          // SIGKILL: no deferred function runs
			kill = make(chan time.Time) // never again
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("child wrote nothing for 30s\n%s", stderr.Bytes())
		}
	}
}

// TestCrashChild is the child of TestCrash; it does nothing unless
// TestCrash started it. It writes records until it is killed, printing
// each sequence number once its Put has returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return
	}
	start, err := strconv.Atoi(os.Getenv(crashStartEnv))
	if err != nil {
		fmt.Println("bad start:", err)
		return
	}
	b, err := OpenBadger(dir, nil)
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	defer b.Close()
	s := Seal(b, crashRing(t))
	deadline := time.Now().Add(20 * time.Second) // in case the parent is gone
	for seq := start; time.Now().Before(deadline); seq++ {
		if err := s.Put(context.Background(), crashKey(seq), crashValue(seq), 0); err != nil {
			fmt.Println("put:", err)
			return
		}
		fmt.Println(seq) // os.Stdout is unbuffered: one write per line
	}
}
