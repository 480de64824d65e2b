package faultfs

import (
	"os"
	"testing"
)

// Require skips t where faultfs cannot mount (no /dev/fuse, or not root),
// and fails it there under CI=true, where a skip would hide the tests.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = err.Error()
	} else if os.Geteuid() != 0 {
		why = "mounting needs root"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("faultfs cannot mount here:", why)
	}
	t.Skip("faultfs cannot mount here:", why)
}
