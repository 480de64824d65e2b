package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st, err := Open(ctx, Config{Dir: dir}, "vetting")
	if err != nil {
		t.Fatal(err)
	}
	if st.Driver == nil || st.Antispam == nil {
		t.Fatalf("incomplete stores: %+v", st)
	}
	for _, d := range []string{"vetting", "vetting-antispam"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", d, err)
		}
	}
	if _, err := Open(ctx, Config{Backend: "aws", Dir: dir}, "vetting"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("aws backend: %v", err)
	}
	if _, err := Open(ctx, Config{}, "vetting"); err == nil {
		t.Fatal("posix without a directory")
	}
}
