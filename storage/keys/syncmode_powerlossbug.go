//go:build powerlossbug

package keys

// syncWrites: this build drops WriteFile's fsyncs, file and directory (see
// syncmode.go). Never ship it.
const syncWrites = false
