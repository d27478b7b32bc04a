package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/config"
)

const (
	opsKey    = "ops-api-key-for-the-test"
	opsSecret = "ops-jwt-secret-for-the-test"
)

// opResult is what one operator command printed and how it exited.
type opResult struct {
	stdout, stderr string
	code           int
}

// runOps runs the binary in dir (a fresh folder, without config.hcl, when empty) with no
// API_KEY or RTSERVER_URL from the test's environment, plus env.
func runOps(t *testing.T, dir string, env []string, args ...string) opResult {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "API_KEY=") && !strings.HasPrefix(kv, "RTSERVER_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := opResult{out.String(), errb.String(), code}
	if strings.Contains(r.stdout+r.stderr, opsKey) {
		t.Errorf("%v printed the API key:\n%s%s", args, r.stdout, r.stderr)
	}
	return r
}

func (r opResult) expect(t *testing.T, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stdout, stdout) || !strings.Contains(r.stderr, stderr) {
		t.Errorf("want exit %d, stdout with %q, stderr with %q; got exit %d\nstdout: %s\nstderr: %s",
			code, stdout, stderr, r.code, r.stdout, r.stderr)
	}
}

// pollingClient is a raw Engine.IO long-polling session of the Socket.IO main namespace.
type pollingClient struct {
	t    *testing.T
	base string
}

func (c *pollingClient) do(method, body string) string {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base, strings.NewReader(body))
	if method == "POST" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		c.t.Fatalf("%s %s: %d %s", method, c.base, res.StatusCode, b)
	}
	return string(b)
}

// readUntil polls until every wanted substring has arrived and returns what came.
func (c *pollingClient) readUntil(want ...string) string {
	c.t.Helper()
	var got strings.Builder
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got.WriteString(c.do("GET", ""))
		all := true
		for _, w := range want {
			all = all && strings.Contains(got.String(), w)
		}
		if all {
			return got.String()
		}
	}
	c.t.Fatalf("no %q in %q", want, got.String())
	return ""
}

// connectUser opens a session for user, registers it and joins room.
func connectUser(t *testing.T, addr, user, room string) *pollingClient {
	t.Helper()
	c := &pollingClient{t: t, base: "http://" + addr + "/socket.io/?EIO=4&transport=polling"}
	open := c.do("GET", "")
	var hs struct{ Sid string }
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.Sid == "" {
		t.Fatalf("handshake: %q", open)
	}
	c.base += "&sid=" + hs.Sid
	tok, err := auth.Mint([]byte(opsSecret), "HS256", user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.do("POST", `40{"token":"`+tok+`"}`)
	c.readUntil(`40{"sid"`)
	c.do("POST", `42["register",{"userId":"`+user+`"}]`+"\x1e"+`42["room:join",{"room":"`+room+`"}]`)
	c.readUntil("register:ack", "room:join:ack")
	return c
}

// TestOperatorCommands runs every operator command against a real server, with the URL
// and key from flags and from the environment, and checks output and exit codes.
func TestOperatorCommands(t *testing.T) {
	cfg := writeConfig(t, `
environment = "test"
server {
  host = "127.0.0.1"
  port = 0
}
auth { jwt_secret = "`+opsSecret+`" }
api {
  key "default" {
    secret = "`+opsKey+`"
    scopes = ["*"]
  }
}
plugins { dir = "`+echoPluginDir(t)+`" }
`)
	_, addr, logs := start(t, cfg)
	url := "http://" + addr
	flags := []string{"--url", url, "--key", opsKey}
	op := func(args ...string) opResult {
		t.Helper()
		return runOps(t, "", nil, append(args, flags...)...)
	}
	client := connectUser(t, addr, "u1", "lobby")

	op("push", "--user", "u1", "--event", "news", "--data", `{"n":1,"s":"<b>"}`).expect(t, 0, "delivered to user u1\n", "")
	client.readUntil(`42["news",{"n":1,"s":"<b>"}`)
	op("push", "--user", "nobody", "--event", "news").expect(t, 0, "not delivered: user nobody has no registered socket", "")
	op("broadcast", "--event", "all", "--data", `[1,2]`).expect(t, 0, "sent to 1 socket\n", "")
	client.readUntil(`42["all",[1,2]`)
	op("room", "--room", "lobby", "--event", "hi").expect(t, 0, "sent to 1 socket in room lobby\n", "")
	client.readUntil(`42["hi",{}`)
	op("room", "--room", "empty", "--event", "hi").expect(t, 0, "sent to 0 sockets in room empty\n", "")
	op("notify", "--user", "u1", "--title", "T", "--message", "M", "--type", "warning").expect(t, 0, "notification delivered to user u1\n", "")
	client.readUntil(`"system:notification",{"title":"T","message":"M","type":"warning"`)

	r := op("status")
	r.expect(t, 0, "status:", "")
	for _, want := range []string{`\nconnections: +1\n`, `\nrooms: +1\n`, `\nuptime: +\d+s\n`, `\nmemory.rss: +[0-9.]+ MiB\n`, `\ntimestamp: +20`} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = op("status", "--json")
	var st map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st["success"] != true || st["connections"] != float64(1) {
		t.Errorf("status --json: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// The plugin table, once the echo plugin is up.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "plugin loaded") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	r = op("plugins")
	r.expect(t, 0, "NAME", "")
	if !strings.Contains(r.stdout, "echo") || !strings.Contains(r.stdout, "running") {
		t.Errorf("plugins:\n%s", r.stdout)
	}
	r = op("plugins", "--json")
	if r.code != 0 || !strings.HasPrefix(r.stdout, `{"success":true,"plugins":[{"name":"echo"`) {
		t.Errorf("plugins --json: %d %q", r.code, r.stdout)
	}

	// URL and key from the environment.
	runOps(t, "", []string{"RTSERVER_URL=" + url, "API_KEY=" + opsKey}, "broadcast", "--event", "e").expect(t, 0, "sent to 1 socket", "")

	// The server's refusals: exit 1, the code on stderr; --json still prints the answer.
	runOps(t, "", nil, "status", "--url", url, "--key", "wrong-key").expect(t, 1, "", "UNAUTHORIZED")
	r = runOps(t, "", nil, "status", "--url", url, "--key", "wrong-key", "--json")
	r.expect(t, 1, `"code":"UNAUTHORIZED"`, "UNAUTHORIZED")
	op("push", "--user", "u1", "--event", "connect").expect(t, 1, "", "INVALID_REQUEST")
	// A signature that is sent is checked even where none is required.
	op("status", "--sign", "v2").expect(t, 0, "status:", "")

	// Usage errors: exit 2, saying which.
	op("push", "--user", "u1", "--event", "e", "--data", `{"a":`).expect(t, 2, "", "--data is not valid JSON")
	op("broadcast", "--event", "e", "--data", "").expect(t, 2, "", "--data is not valid JSON")
	op("push", "--event", "e").expect(t, 2, "", "--user is required")
	op("notify", "--user", "u1", "--title", "t", "--message", "m", "--type", "fatal").expect(t, 2, "", "--type must be info, warning or error")
	op("status", "--sign", "v3").expect(t, 2, "", "--sign must be v1, v2 or none")
	op("status", "--bogus").expect(t, 2, "", "flag provided but not defined: -bogus")
	runOps(t, "", nil, "status", "--url", url).expect(t, 2, "", "no API key")
	runOps(t, "", nil, "status", "--key", "k", "--url", "ftp://x").expect(t, 2, "", "not an http://")
	runOps(t, "", nil, "status", "--key", "k", "--config", filepath.Join(t.TempDir(), "none.hcl")).expect(t, 2, "", "none.hcl")

	// Unreachable: exit 3.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	runOps(t, "", nil, "status", "--url", dead, "--key", "k").expect(t, 3, "", "cannot reach the server at "+dead)

	// --help on every command: exit 0, its flags on stdout.
	common := []string{"--url", "--key", "--config", "--sign", "--json", "--timeout"}
	for cmd, own := range map[string][]string{
		"push":      {"--user", "--event", "--data"},
		"broadcast": {"--event", "--data"},
		"room":      {"--room", "--event", "--data"},
		"notify":    {"--user", "--title", "--message", "--type"},
		"status":    nil,
		"plugins":   nil,
	} {
		r := runOps(t, "", nil, cmd, "--help")
		for _, f := range append(own, common...) {
			if r.code != 0 || !strings.Contains(r.stdout, "\n  "+f+" ") && !strings.Contains(r.stdout, "\n  "+f+"\n") {
				t.Errorf("%s --help: exit %d, no %s:\n%s", cmd, r.code, f, r.stdout)
			}
		}
	}
}

// TestOperatorCommandsSign: against a server that requires signatures, the commands read
// the URL, the key and the need to sign from config.hcl in the working folder, and sign
// v1 or v2 as asked.
func TestOperatorCommandsSign(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(cfg, []byte(`
environment = "test"
server {
  host = "127.0.0.1"
  port = `+strconv.Itoa(port)+`
}
auth { jwt_secret = "`+opsSecret+`" }
api {
  key "default" {
    secret = "`+opsKey+`"
    scopes = ["*"]
  }
  signing {
    required    = true
    min_version = "v1"
  }
}
plugins { dir = "`+t.TempDir()+`" }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, cfg)

	// Everything from config.hcl: v2 by default.
	runOps(t, dir, nil, "status").expect(t, 0, "status:", "")
	runOps(t, dir, nil, "push", "--user", "u1", "--event", "e", "--data", `{"big":"`+strings.Repeat("x", 1000)+`"}`).expect(t, 0, "not delivered", "")
	for _, v := range []string{"v1", "v2"} {
		runOps(t, dir, nil, "status", "--sign", v).expect(t, 0, "status:", "")
		runOps(t, dir, nil, "broadcast", "--sign", v, "--event", "e", "--data", `{"v":"`+v+`"}`).expect(t, 0, "sent to 0 sockets", "")
	}
	runOps(t, dir, nil, "status", "--sign", "none").expect(t, 1, "", "SIGNATURE_MISSING")
	runOps(t, dir, nil, "status", "--key", "wrong-key").expect(t, 1, "", "UNAUTHORIZED")
	// The same from another folder, through --config.
	runOps(t, "", nil, "plugins", "--config", cfg).expect(t, 0, "no plugins", "")

	// A config.hcl found in the folder that does not validate is passed over with a note;
	// one asked for with --config is a usage error.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "config.hcl"), []byte("environment = \"production\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	runOps(t, bad, []string{"JWT_SECRET="}, "status", "--url", url, "--key", opsKey, "--sign", "v2").
		expect(t, 0, "status:", "not using config.hcl: ")
	runOps(t, bad, []string{"JWT_SECRET="}, "status", "--url", url, "--key", opsKey, "--config", "config.hcl").
		expect(t, 2, "", "configuration config.hcl is not valid")
}

// TestConfigURL: an unspecified listen host means this machine; api.listen wins.
func TestConfigURL(t *testing.T) {
	for _, c := range []struct {
		host, listen string
		port         int
		want         string
	}{
		{"0.0.0.0", "", 3000, "http://127.0.0.1:3000"},
		{"", "", 4000, "http://127.0.0.1:4000"},
		{"::", "", 3000, "http://[::1]:3000"},
		{"10.0.0.5", "", 3000, "http://10.0.0.5:3000"},
		{"0.0.0.0", "127.0.0.2:9000", 3000, "http://127.0.0.2:9000"},
		{"0.0.0.0", ":9000", 3000, "http://127.0.0.1:9000"},
		{"127.0.0.1", "", 0, defaultURL},
	} {
		cfg := &config.Config{}
		cfg.Server.Host, cfg.Server.Port, cfg.API.Listen = c.host, c.port, c.listen
		if got := configURL(cfg); got != c.want {
			t.Errorf("host %q port %d listen %q: %s, want %s", c.host, c.port, c.listen, got, c.want)
		}
	}
}
