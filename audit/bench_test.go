package audit

import (
	"bytes"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// BenchmarkRecordToolCall is what auditing one allowed tool call costs
// the request that makes it: its line on a JSON logger, as Caddy's, and
// its place in the ring's queue (the writer's batches are not counted).
func BenchmarkRecordToolCall(b *testing.B) {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)
	l, err := New(Options{Logger: zap.New(core), ArgsKey: []byte("0123456789abcdef0123456789abcdef"), Buffer: 1 << 20, Max: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	args := []byte(`{"message":"hi"}`)
	b.ReportAllocs()
	for b.Loop() {
		l.Record(Event{Kind: KindToolCall, User: "alice@example.com", Connector: "echo", Tool: "echo",
			Decision: DecisionAllow, Outcome: OutcomeOK, Duration: 1500 * time.Microsecond, ArgsHash: l.HashArgs(args)})
	}
}

// TestLinesReuseNoFields: audit lines written one after another, as the
// field slices are reused, each carry their own fields and none of the
// line before.
func TestLinesReuseNoFields(t *testing.T) {
	var out bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"}), zapcore.AddSync(&out), zapcore.InfoLevel)
	l, err := New(Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Record(Event{Kind: KindToolCall, User: "alice", Connector: "echo", Tool: "echo", Decision: DecisionDeny,
		Outcome: "denied", Duration: time.Millisecond, ArgsHash: "abc", Detail: "first"})
	l.Record(Event{Kind: KindDisconnect, User: "bob", Connector: "notion"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out.String())
	}
	for _, want := range []string{`"user":"alice"`, `"tool":"echo"`, `"args_hash":"abc"`, `"detail":"first"`, `"duration_ms":1`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("first line %s lacks %s", lines[0], want)
		}
	}
	if want := `{"msg":"connector disconnected","kind":"disconnect","user":"bob","connector":"notion"}`; lines[1] != want {
		t.Errorf("second line\n%s\nwant\n%s", lines[1], want)
	}
}

// BenchmarkKey is the store key of one page, made for each page the
// ring's writer stores and each it deletes.
func BenchmarkKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = pageKey(classCalls, page{last: 1234567, n: maxBatch})
	}
}

// BenchmarkRingBadger is what keeping tool calls in a Badger ring costs
// the whole process, the writer's batches and Badger's flushes and
// compactions included: the CPU time from the first Record to the store
// closed, per event (cpu-ns/event). The calls come in bursts of a batch,
// 5 ms apart (51,200 a second), so that the writer keeps up, as it does
// under load, and none is dropped.
func BenchmarkRingBadger(b *testing.B) {
	st, err := store.OpenBadger(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	e := Event{Kind: KindToolCall, User: "agent-17@example.com", Connector: "github", Tool: "search_code",
		Decision: DecisionAllow, Outcome: OutcomeOK, ArgsHash: "3f9a0c1d2e4b5a6978f0e1d2c3b4a596", Duration: 3 * time.Millisecond}
	start := processCPU()
	n := 0
	for b.Loop() {
		l.Record(e)
		if n++; n%maxBatch == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if l.Dropped() != 0 {
		b.Fatalf("%d events dropped", l.Dropped())
	}
	b.ReportMetric(float64(processCPU()-start)/float64(n), "cpu-ns/event")
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
