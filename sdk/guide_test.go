package sdk

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginGuideCompilesAndPasses: the plugin docs/plugins.md walks a newcomer through
// (its main.go and main_test.go, marked in the guide) builds against this SDK and its own
// test passes, so the guide cannot drift from the SDK.
func TestPluginGuideCompilesAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests the guide's plugin")
	}
	guide, err := os.ReadFile("../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	// A folder under testdata is inside this module (so the SDK import resolves) but
	// outside ./... patterns; it is removed at the end.
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("testdata", "guide-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		_ = os.Remove("testdata") // only when empty, as a fresh checkout has none
	})
	for _, name := range []string{"main.go", "main_test.go"} {
		_, rest, ok := strings.Cut(string(guide), "<!-- file: "+name+" -->\n```go\n")
		if !ok {
			t.Fatalf("the guide has no block marked %s", name)
		}
		block, _, ok := strings.Cut(rest, "```\n")
		if !ok {
			t.Fatalf("the %s block is not closed", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkg := "./" + filepath.ToSlash(dir)
	for _, args := range [][]string{{"vet", pkg}, {"build", "-o", os.DevNull, pkg}, {"test", "-count=1", pkg}} {
		cmd := exec.Command("go", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
