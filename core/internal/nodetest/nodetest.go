// Package nodetest runs a package's npm suite (testdata/node: node --test files against pinned
// npm packages) from go test: find node, install the pinned packages, run the files.
package nodetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Node is the node binary; without one the test is skipped.
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the npm suite needs Node.js 18+")
	}
	return node
}

// Install runs `npm ci --no-audit --no-fund` with extra arguments in dir unless dir/marker
// (a file or folder the install leaves, relative to dir) is there already. A failed
// install fails the test: the suite's packages are pinned in its package-lock.json.
func Install(t testing.TB, dir, marker string, extra ...string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
		return
	}
	cmd := exec.Command("npm", append([]string{"ci", "--no-audit", "--no-fund"}, extra...)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, b)
	}
}

// Run runs `node --test --test-reporter=spec args...` in dir with env added to this process's
// environment, logs what the suite printed and fails the test when the suite fails.
func Run(t testing.TB, node, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(node, append([]string{"--test", "--test-reporter=spec"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node suite failed: %v", err)
	}
}
