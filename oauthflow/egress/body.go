package egress

import (
	"errors"
	"io"
	"strconv"
)

// ErrTooLarge is wrapped by the error for a response body longer than the
// policy's MaxBody.
var ErrTooLarge = errors.New("response too large")

// cappedBody is a response body that fails, rather than truncates, when
// it runs past its limit.
type cappedBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
	over  bool
}

// Read reads at most the remaining allowance, and one byte more to tell
// an exact fit from an overflow.
func (b *cappedBody) Read(p []byte) (int, error) {
	if b.over {
		return 0, b.tooLarge()
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n, b.left, b.over = int(b.left), 0, true
		return n, b.tooLarge()
	}
	b.left -= int64(n)
	return n, err
}

// Close closes the underlying body.
func (b *cappedBody) Close() error {
	return b.rc.Close()
}

// tooLarge returns the overflow error.
func (b *cappedBody) tooLarge() error {
	return tooLargeError(b.limit)
}

// tooLargeError is the error for a body past its limit, in bytes.
type tooLargeError int64

// Error says "response larger than N bytes".
func (e tooLargeError) Error() string {
	return "response larger than " + strconv.FormatInt(int64(e), 10) + " bytes"
}

// Is makes the error match ErrTooLarge.
func (e tooLargeError) Is(target error) bool {
	return target == ErrTooLarge
}
