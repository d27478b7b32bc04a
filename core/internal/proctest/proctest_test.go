package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// serverBinary builds the server once for the tests of this package.
func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "proctest-"); buildErr == nil {
			buildErr = Build(filepath.Join(binDir, "rtserver"), ServerPackage)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "rtserver")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestBuildAndStart builds the real server and runs it on an ephemeral port: Start returns
// the address from its listening line and the logs hold that line.
func TestBuildAndStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	dir := t.TempDir()
	bin := serverBinary(t)
	cfg := filepath.Join(dir, "test.hcl")
	body := `
environment = "test"
server {
  host = "127.0.0.1"
  port = 0
}
auth { jwt_secret = "proctest-secret-0123456789abcdef" }
api {
  key "default" {
    secret = "proctest-api-key-0123456789abcdef"
    scopes = ["*"]
  }
}
plugins { dir = "` + t.TempDir() + `" }
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, logs := Start(t, exec.Command(bin, "run", "--config", cfg))
	if !strings.HasPrefix(addr, "127.0.0.1:") || !strings.Contains(logs.String(), "listening: addr="+addr) {
		t.Fatalf("addr %q, logs:\n%s", addr, logs)
	}
}

// TestStartFailsOnExit: a server that refuses its configuration fails Start with its logs
// at once; the failure is seen through a sub-test's result.
func TestStartFailsOnExit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	dir := t.TempDir()
	bin := serverBinary(t)
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(ft, exec.Command(bin, "run", "--config", filepath.Join(dir, "missing.hcl")))
	}()
	<-done
	if !strings.Contains(ft.msg, "exited before listening") {
		t.Fatalf("Start said %q", ft.msg)
	}
}

// fakeT records a Fatalf and ends the goroutine as testing.T would.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestBuildReportsFailure(t *testing.T) {
	err := Build(filepath.Join(t.TempDir(), "x"), "./does-not-exist")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist") {
		t.Fatalf("err = %v", err)
	}
}
