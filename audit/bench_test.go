package audit

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
