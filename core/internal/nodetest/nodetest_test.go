package nodetest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunPassesEnv runs a one-test suite that checks the variable Run passes it; the
// install is skipped because the marker is there already (npm is never called).
func TestRunPassesEnv(t *testing.T) {
	node := Node(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "node_modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	Install(t, dir, "node_modules")
	suite := `import test from "node:test";
import assert from "node:assert/strict";
test("env", () => assert.equal(process.env.NODETEST_WORD, "kept"));
`
	if err := os.WriteFile(filepath.Join(dir, "env.test.mjs"), []byte(suite), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, node, dir, []string{"NODETEST_WORD=kept"}, "env.test.mjs")
}
