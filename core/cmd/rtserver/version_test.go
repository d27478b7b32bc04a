package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The release version reaches the binary only through the Makefile's -X
// flag, which names the variable by import path: a package move silently
// turns it into a no-op and `version` prints "dev". Building through the
// Makefile itself keeps the flag and the package path checked together.
func TestMakeBuildStampsVersion(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	const want = "v9.8.7-test"
	bin := filepath.Join(t.TempDir(), "rtserver")
	cmd := exec.Command("make", "-C", repoRoot(), "build", "VERSION="+want, "BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("version printed %q, want %q", got, want)
	}
}
