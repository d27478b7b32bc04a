package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/proctest"
)

// The binary under test, built once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rtserver-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "rtserver")
	if err := proctest.Build(binary, "."); err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.hcl")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs the binary and waits for its listening line.
func start(t *testing.T, cfg string, env ...string) (*exec.Cmd, string, *proctest.Logs) {
	t.Helper()
	return startArgs(t, []string{"run", "--config", cfg}, env...)
}

// startArgs is start with the command line given.
func startArgs(t *testing.T, args []string, env ...string) (*exec.Cmd, string, *proctest.Logs) {
	t.Helper()
	return startCmd(t, exec.Command(binary, args...), env...)
}

// startCmd starts a prepared command of the binary and waits for its listen line.
func startCmd(t *testing.T, cmd *exec.Cmd, env ...string) (*exec.Cmd, string, *proctest.Logs) {
	t.Helper()
	cmd.Env = append(os.Environ(), env...)
	addr, logs := proctest.Start(t, cmd)
	return cmd, addr, logs
}

func TestGracefulShutdownExitsZero(t *testing.T) {
	cfg := writeConfig(t, `
environment = "test"
server {
  host = "127.0.0.1"
  port = 0
}
auth { jwt_secret = "s3cret-for-the-test" }
api {
  key "default" {
    secret = "api-key-for-the-test"
    scopes = ["*"]
  }
}
plugins { dir = "`+t.TempDir()+`" }
`)
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	mem := filepath.Join(t.TempDir(), "mem.pprof")
	cmd, addr, logs := startArgs(t, []string{"run", "--config", cfg, "-cpuprofile", prof, "-memprofile", mem})
	res, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("health: %d", res.StatusCode)
	}
	if strings.Contains(logs.String(), "api-key-for-the-test") || strings.Contains(logs.String(), "s3cret-for-the-test") {
		t.Fatalf("a secret reached the log:\n%s", logs)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, logs, "SIGTERM")
	// -cpuprofile and -memprofile: written out at the stop (pprof's gzipped protobuf).
	for name, path := range map[string]string{"CPU": prof, "allocation": mem} {
		if b, err := os.ReadFile(path); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s profile: %d bytes, %v", name, len(b), err)
		}
	}
}

func TestDevelopmentGeneratesSecretsAndPrintsToken(t *testing.T) {
	cfg := writeConfig(t, `
environment = "development"
server {
  host = "127.0.0.1"
  port = 0
}
plugins { dir = "`+t.TempDir()+`" }
`)
	_, addr, logs := start(t, cfg, "JWT_SECRET=", "API_KEY=")
	// The printed token and key work.
	time.Sleep(100 * time.Millisecond)
	key := regexp.MustCompile(`X-API-Key=([0-9a-f]{64})`).FindStringSubmatch(logs.String())
	if key == nil {
		t.Fatalf("no API key printed:\n%s", logs)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/status", nil)
	req.Header.Set("X-API-Key", key[1])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status with the printed key: %d", res.StatusCode)
	}
	if !regexp.MustCompile(`token=eyJ[\w-]+\.[\w-]+\.[\w-]+`).MatchString(logs.String()) {
		t.Fatalf("no token printed:\n%s", logs)
	}
}

func TestProductionRefusesMissingSecrets(t *testing.T) {
	cfg := writeConfig(t, "environment = \"production\"\n")
	cmd := exec.Command(binary, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "JWT_SECRET=", "API_KEY=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "test.hcl") {
		t.Fatalf("production without secrets: err=%v\n%s", err, out)
	}
}

func TestCheckConfigPointsAtTheLine(t *testing.T) {
	cfg := writeConfig(t, "environment = \"development\"\nserver {\n  prot = 3000\n}\n")
	out, err := exec.Command(binary, "check-config", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "test.hcl:3") {
		t.Fatalf("check-config: err=%v\n%s", err, out)
	}
	out, err = exec.Command(binary, "run", "--check-config", "--config", filepath.Join(repoRoot(), "config.hcl")).CombinedOutput()
	if err != nil {
		t.Fatalf("config.hcl: %v\n%s", err, out)
	}
}

func TestTokenCommand(t *testing.T) {
	out, err := exec.Command(binary, "token", "--secret", "k", "--user", "u1", "--ttl", "1h").Output()
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Options{Secret: []byte("k"), Algorithms: []string{"HS256"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(string(out)))
	if err != nil || c.UserID != "u1" || time.Until(c.ExpiresAt) > time.Hour || time.Until(c.ExpiresAt) < 59*time.Minute {
		t.Fatalf("token: %v %+v", err, c)
	}
	if err := exec.Command(binary, "token", "--secret", "k").Run(); err == nil {
		t.Fatal("token without --user succeeded")
	}
}

// echoConfig writes a development config whose plugin folder holds the echo example.
func echoConfig(t *testing.T) string {
	t.Helper()
	plugins := echoPluginDir(t)
	cfg := writeConfig(t, `
environment = "development"
server {
  host = "127.0.0.1"
  port = 0
}
plugins { dir = "`+plugins+`" }
`)
	return cfg
}

// echoPluginDir builds the echo example into a fresh plugin folder.
func echoPluginDir(t *testing.T) string {
	t.Helper()
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "echo"), "./examples/echo")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build echo: %v\n%s", err, out)
	}
	return plugins
}

// waitExit waits for the server to exit after what (a signal), and fails unless it exits
// with status 0 within 20 s.
func waitExit(t *testing.T, cmd *exec.Cmd, logs *proctest.Logs, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after %s: %v\n%s", what, err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit after %s\n%s", what, logs)
	}
}

// TestSIGKILLLeavesNoPlugin kills the server outright and checks that its plugin process
// goes away by itself.
func TestSIGKILLLeavesNoPlugin(t *testing.T) {
	cfg := echoConfig(t)
	cmd, _, logs := start(t, cfg)
	var child int
	deadline := time.Now().Add(10 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		child = childOf(cmd.Process.Pid)
		time.Sleep(50 * time.Millisecond)
	}
	if child == 0 {
		t.Fatalf("no plugin process started\n%s", logs)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("plugin %d outlived the killed server", child)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childOf finds a child process of pid through /proc.
func childOf(pid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			return n
		}
	}
	return 0
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// TestCtrlCIsACleanShutdown: Ctrl-C in a terminal signals the whole foreground process
// group. The plugins run in groups of their own, so the host stops them itself: the
// server exits 0 and logs no warning or error on the way out.
func TestCtrlCIsACleanShutdown(t *testing.T) {
	cfg := echoConfig(t)
	cmd := exec.Command(binary, "run", "--config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group
	cmd, _, logs := startCmd(t, cmd)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "plugin loaded") {
		if time.Now().After(deadline) {
			t.Fatalf("the echo plugin did not load\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	child := childOf(cmd.Process.Pid)
	before := len(logs.String())
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	waitExit(t, cmd, logs, "Ctrl-C")
	time.Sleep(100 * time.Millisecond) // the log reader drains the pipe
	shutdown := logs.String()[before:]
	for _, line := range strings.Split(shutdown, "\n") {
		if strings.Contains(line, "[WARN]") || strings.Contains(line, "[ERROR]") {
			t.Errorf("a normal shutdown logged: %s", line)
		}
	}
	if child != 0 && alive(child) {
		t.Errorf("plugin %d outlived the server", child)
	}
}

// TestConformanceCommand: `rtserver conformance` serves the protocol suites' two servers
// on the address given, reads no configuration, and stops cleanly on SIGTERM. What they
// answer is checked in package conformance.
func TestConformanceCommand(t *testing.T) {
	c := exec.Command(binary, "conformance", "--listen", "127.0.0.1:0")
	c.Dir = t.TempDir() // no config.hcl there, and none needed
	cmd, addr, logs := startCmd(t, c)
	for _, path := range []string{"/engine.io/", "/socket.io/"} {
		res, err := http.Get("http://" + addr + path + "?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(b.String(), `0{"sid":"`) ||
			!strings.Contains(b.String(), `"pingInterval":300,"pingTimeout":200,"maxPayload":1000000`) {
			t.Errorf("%s handshake: %d %q", path, res.StatusCode, b.String())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, logs, "SIGTERM")
	if out, err := exec.Command(binary, "conformance", "--listen", "nonsense").CombinedOutput(); err == nil {
		t.Errorf("a bad --listen was accepted: %s", out)
	}
}
