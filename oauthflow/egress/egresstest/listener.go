// Package egresstest helps tests show that the egress client refuses a
// destination before it connects, rather than failing afterwards.
package egresstest

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Listener is a loopback TCP listener that counts the connections it
// accepts and closes each one at once.
type Listener struct {
	ln       net.Listener
	accepted atomic.Int64
}

// NewListener starts a Listener on 127.0.0.1; it stops when the test ends.
func NewListener(t testing.TB) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{ln: ln}
	go l.serve()
	t.Cleanup(func() { ln.Close() })
	return l
}

// serve accepts and counts connections until the listener closes.
func (l *Listener) serve() {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.accepted.Add(1)
		conn.Close()
	}
}

// Port returns the listener's port.
func (l *Listener) Port() string {
	_, port, _ := net.SplitHostPort(l.ln.Addr().String())
	return port
}

// Accepted returns how many connections the listener has accepted so far.
func (l *Listener) Accepted() int64 {
	return l.accepted.Load()
}

// WaitAccepted waits up to two seconds for the count to reach n, since
// the listener counts in its own goroutine, and returns the count.
func (l *Listener) WaitAccepted(n int64) int64 {
	deadline := time.Now().Add(2 * time.Second)
	for l.accepted.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return l.accepted.Load()
}
