package jsinterop

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Dir is the script's directory, relative to a package two levels below
// the module root (receipts/passport, receipts/vesper), where go test runs.
const Dir = "../../testdata/interop/js"

// Run runs interop.mjs with args and returns its JSON answer, failing t
// unless the answer's "ok" is want. need is an npm package the call uses
// (under node_modules). Without node or the package the test is skipped,
// unless VESPER_INTEROP=1 (CI), where that is a failure.
func Run(t *testing.T, need string, want bool, args ...string) map[string]any {
	t.Helper()
	bin, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(Dir, "node_modules", filepath.FromSlash(need))); err != nil || serr != nil {
		if os.Getenv("VESPER_INTEROP") == "1" {
			t.Fatalf("node or the npm packages are missing (run npm ci in %s)", Dir)
		}
		t.Skip("node and the npm interop packages are not installed (npm ci in testdata/interop/js)")
	}
	cmd := exec.Command(bin, append([]string{"interop.mjs"}, args...)...)
	cmd.Dir = Dir
	out, _ := cmd.Output()
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("interop.mjs %s: %v: %s", strings.Join(args, " "), err, out)
	}
	if ok, _ := res["ok"].(bool); ok != want {
		t.Fatalf("interop.mjs %s: %s, want ok=%v", strings.Join(args, " "), out, want)
	}
	return res
}
