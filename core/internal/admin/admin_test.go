package admin_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/admin"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/nodetest"
	"github.com/rtserver/rtserver/core/internal/server"
)

const (
	testSecret   = "admin-test-jwt-secret-0123456789abcdef"
	testAPIKey   = "admin-test-api-key-0123456789abcdef"
	testPassword = "correct horse battery staple"
)

// nodeDir is the npm suite: the official socket.io-client and the Admin UI build.
func nodeDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "node")
}

// npmInstall installs the suite's pinned packages when they are absent.
func npmInstall(t testing.TB) string {
	t.Helper()
	dir := nodeDir(t)
	built := filepath.Join("node_modules", "@socket.io", "admin-ui", "ui", "dist", "index.html")
	if _, err := os.Stat(filepath.Join(dir, built)); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			t.Skip("npm is not installed; the admin suite needs Node.js 18+")
		}
	}
	nodetest.Install(t, dir, built, "--ignore-scripts")
	return dir
}

type testServer struct {
	srv *server.Server
	cfg *config.Config
	url string
}

// start serves a node on 127.0.0.1 with the admin namespace on, mutated by fn.
func start(t testing.TB, fn func(*config.Config)) *testServer {
	t.Helper()
	hash, err := admin.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Environment = "test"
	cfg.Server.Host = "127.0.0.1"
	cfg.Auth.JWTSecret = testSecret
	cfg.API.Keys = []config.APIKey{{Name: "default", Secret: testAPIKey, Scopes: []string{config.ScopeAll}}}
	cfg.RateLimit.WSConnectionsPerMinute = 100000
	cfg.RateLimit.WSMessagesPerMinute = 100000
	cfg.Plugins.Dir = t.TempDir()
	cfg.Admin.PasswordHash = string(hash)
	cfg.Admin.UIDir = filepath.Join(nodeDir(t), "node_modules", "@socket.io", "admin-ui", "ui", "dist")
	if fn != nil {
		fn(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: testWriter{t}})
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background(), ln, nil); err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testServer{srv: srv, cfg: cfg, url: "http://" + srv.Addr().String()}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestNodeAdminClient runs the npm suite (official socket.io-client 4.8.4) against /admin
// in each mode: development, read-only and production; and the failed-login limit.
func TestNodeAdminClient(t *testing.T) {
	node := nodetest.Node(t)
	dir := npmInstall(t)
	for _, mode := range []string{"development", "readonly", "production", "limits"} {
		t.Run(mode, func(t *testing.T) {
			ts := start(t, func(c *config.Config) {
				c.Admin.ReadOnly = mode == "readonly"
				if mode == "production" {
					c.Admin.Mode = config.AdminProduction
				}
			})
			base := runtime.NumGoroutine()
			file := "admin.test.mjs"
			if mode == "limits" {
				file = "limits.test.mjs"
			}
			nodetest.Run(t, node, dir, []string{"SERVER_URL=" + ts.url, "JWT_SECRET=" + testSecret,
				"ADMIN_USER=admin", "ADMIN_PASSWORD=" + testPassword, "MODE=" + mode}, file)
			// Every session of the suite is gone with its process: nothing of them, the
			// stats loop or the actions' goroutines, stays.
			deadline := time.Now().Add(15 * time.Second)
			for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > base {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines left over %d:\n%s", n-base, base, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}
