package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// installHint says how to get PostgreSQL when it is missing. A test that
// needs PostgreSQL fails rather than skips without it, so that a machine
// missing it never passes by testing less.
const installHint = "run scripts/test, which installs Debian's postgresql"

// debianBins is where Debian's postgresql package puts the server's
// programs, one directory per major version, off PATH.
const debianBins = "/usr/lib/postgresql/*/bin"

// binaries finds the directory holding initdb and postgres: initdb's on
// PATH, else Debian's newest version under debianBins.
func binaries() (string, error) {
	return findBinaries(exec.LookPath, debianBins)
}

// findBinaries is binaries with its lookups passed in, so that a test can
// make PostgreSQL missing.
func findBinaries(lookPath func(string) (string, error), pattern string) (string, error) {
	if initdb, err := lookPath("initdb"); err == nil {
		// Debian links some programs into /usr/local/bin or /usr/bin; the
		// server is beside the link's target, not beside the link.
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			initdb = real
		}
		if dir := filepath.Dir(initdb); hasServer(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(pattern) // only ErrBadPattern, and the pattern is fixed
	slices.SortFunc(dirs, byVersion)
	for _, dir := range slices.Backward(dirs) {
		if hasServer(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL's initdb and postgres were not found on PATH or under %s; %s", pattern, installHint)
}

// hasServer reports whether dir holds both initdb and postgres.
func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.IsDir() {
			return false
		}
	}
	return true
}

// byVersion orders Debian's version directories (/usr/lib/postgresql/9.6/bin,
// .../15/bin) by their major version as a number, so that 15 comes after 9.6.
func byVersion(a, b string) int {
	va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
	vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
	switch {
	case va < vb:
		return -1
	case va > vb:
		return 1
	}
	return 0
}

// serverUser returns the credential to run PostgreSQL's programs with:
// nil when this process is not root, else the postgres user's, because
// initdb and postgres refuse to run as root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and there is no postgres user to run it as; %s", installHint)
		}
		return nil, fmt.Errorf("looking up the postgres user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("the postgres user's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("the postgres user's gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
