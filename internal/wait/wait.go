// Package wait is a test helper: it waits for a condition with a deadline
// generous enough for a loaded machine, so that a test never sleeps a
// fixed time and then asserts.
package wait

import (
	"testing"
	"time"
)

// poll is how often Until tries cond again.
const poll = 10 * time.Millisecond

// Until tries cond every few milliseconds until it holds, and fails t
// saying what it waited for if it does not within the given time.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(within); !cond(); time.Sleep(poll) {
		if time.Now().After(end) {
			t.Fatalf("after %v: %s", within, what)
		}
	}
}
