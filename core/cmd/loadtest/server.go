package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// serverProc is one rtserver child process, started for one scenario on a free port of
// 127.0.0.1 with a private folder holding its configuration, plugins and log.
type serverProc struct {
	cmd     *exec.Cmd
	pid     int
	port    int
	secret  string
	apiKey  string
	dir     string
	logPath string
	log     hclog.Logger

	exited  chan struct{}
	waitErr error // valid once exited is closed
	logTail *tail
}

// serverSpec says how to start a server.
type serverSpec struct {
	binary string // the rtserver binary
	config string // the HCL configuration to start from
	// plugins are the plugin binaries to put in the plugins folder, by plugin name.
	plugins map[string]string
	keep    bool // keep the private folder (config and log) after stop
	// profileDir, when set, makes each server write CPU and allocation profiles there, one
	// pair per server start (rtserver run -cpuprofile -memprofile).
	profileDir string
	label      string // the scenario, for the profile's name
	// settings override attributes of the configuration.
	settings []setting
}

// setting is one attribute of one block of the HCL configuration.
type setting struct {
	block, name string
	value       cty.Value
}

// startServer writes the configuration (host 127.0.0.1, the plugins folder), starts the
// binary with JWT_SECRET, API_KEY and PORT in its environment and waits for /health.
func startServer(ctx context.Context, spec serverSpec, log hclog.Logger) (*serverProc, error) {
	dir, err := os.MkdirTemp("", "rtserver-loadtest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s := &serverProc{dir: dir, log: log, exited: make(chan struct{}), logTail: newTail(40)}
	ok := false
	defer func() {
		if !ok && !spec.keep {
			os.RemoveAll(dir)
		}
	}()
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return nil, fmt.Errorf("plugins dir: %w", err)
	}
	for name, bin := range spec.plugins {
		if err := copyFile(bin, filepath.Join(plugins, name), 0o755); err != nil {
			return nil, fmt.Errorf("%s plugin: %w", name, err)
		}
	}
	src, err := os.ReadFile(spec.config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	conf, err := rewriteConfig(src, spec.config, plugins, spec.settings...)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "loadtest.hcl")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	s.secret, s.apiKey = randomHex(32), randomHex(24)

	s.logPath = filepath.Join(dir, "server.log")
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	bin, err := filepath.Abs(spec.binary)
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("server binary: %w", err)
	}
	s.cmd = exec.Command(bin, "run", "--config", confPath)
	if spec.profileDir != "" {
		stamp := time.Now().UnixNano()
		prof := filepath.Join(spec.profileDir, fmt.Sprintf("cpu-%s-%d.pprof", spec.label, stamp))
		mem := filepath.Join(spec.profileDir, fmt.Sprintf("mem-%s-%d.pprof", spec.label, stamp))
		s.cmd.Args = append(s.cmd.Args, "-cpuprofile", prof, "-memprofile", mem)
		log.Info("server profiles", "cpu", prof, "allocs", mem)
	}
	s.cmd.Env = append(withoutEnv(os.Environ(), "JWT_SECRET", "API_KEY", "PORT"),
		"JWT_SECRET="+s.secret, "API_KEY="+s.apiKey, "PORT="+strconv.Itoa(s.port))
	if err := s.launch(ctx, logFile, "server"); err != nil {
		return nil, err
	}
	log.Debug("server started", "pid", s.pid, "port", s.port, "dir", dir)
	ok = true
	return s, nil
}

// launch starts s.cmd with its output in logFile (which it closes when the process
// exits) and in the log tail, and waits until the process answers GET /health; what
// names the process in errors.
func (s *serverProc) launch(ctx context.Context, logFile *os.File, what string) error {
	out := io.MultiWriter(logFile, s.logTail)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	// Its own process group, so that a server that ignores SIGTERM is killed with its
	// plugins; and it dies with us if the load tool is killed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", s.cmd.Path, err)
	}
	s.pid = s.cmd.Process.Pid
	go func() {
		s.waitErr = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx, 20*time.Second); err != nil {
		s.kill()
		return fmt.Errorf("%w\n%s log (last lines):\n%s", err, what, s.logTail.String())
	}
	return nil
}

// waitHealthy polls GET /health until it answers 200.
func (s *serverProc) waitHealthy(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cl := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.httpURL("/health"), nil)
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited at start: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("server not healthy after %s: %w", limit, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *serverProc) wsURL() string {
	return "ws://127.0.0.1:" + strconv.Itoa(s.port) + "/socket.io/?EIO=4&transport=websocket"
}

func (s *serverProc) httpURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.port) + path
}

// running returns an error if the server has exited.
func (s *serverProc) running() error {
	select {
	case <-s.exited:
		return fmt.Errorf("server exited: %v\nserver log (last lines):\n%s", s.waitErr, s.logTail.String())
	default:
		return nil
	}
}

// stop asks the server to shut down (SIGTERM), kills its process group if it takes too long,
// and removes its folder unless keep.
func (s *serverProc) stop(keep bool) error {
	defer func() {
		if !keep {
			os.RemoveAll(s.dir)
		}
	}()
	select {
	case <-s.exited:
		return fmt.Errorf("server had already exited: %v", s.waitErr)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("server shutdown: %w", s.waitErr)
		}
		return nil
	case <-time.After(20 * time.Second):
		s.kill()
		return errors.New("server did not stop within 20s of SIGTERM; killed")
	}
}

// kill ends the server's process group (the server and its plugins) and waits.
func (s *serverProc) kill() {
	_ = syscall.Kill(-s.pid, syscall.SIGKILL)
	<-s.exited
}

// cpu returns the server's user+system CPU time so far.
func (s *serverProc) cpu() (time.Duration, error) { return procCPU(s.pid) }

// times returns the server's user and system CPU time so far.
func (s *serverProc) times() (cpuTimes, error) { return procTimes(s.pid) }

// gcCycles returns how many garbage collections the server has run, from its /metrics
// (go_gc_duration_seconds_count); -1 when metrics are off or unreadable.
func (s *serverProc) gcCycles() float64 {
	res, err := http.Get(s.httpURL("/metrics"))
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	return parseMetric(res.Body, "go_gc_duration_seconds_count")
}

// parseMetric returns the value of the unlabelled sample name in a Prometheus text
// exposition, or -1.
func parseMetric(r io.Reader, name string) float64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return -1
		}
		return v
	}
	return -1
}

// writes returns the server's write system calls so far.
func (s *serverProc) writes() (int64, error) { return procWrites(s.pid) }

// rss returns the server's resident set size in bytes.
func (s *serverProc) rss() (int64, error) { return procRSS(s.pid) }

// childrenCPU sums the CPU time of the server's child processes (its plugins).
func (s *serverProc) childrenCPU() (time.Duration, int, error) {
	pids, err := childPIDs(s.pid)
	if err != nil {
		return 0, 0, err
	}
	var sum time.Duration
	for _, p := range pids {
		d, err := procCPU(p)
		if err != nil {
			continue // exited meanwhile
		}
		sum += d
	}
	return sum, len(pids), nil
}

// rewriteConfig sets server.host to 127.0.0.1, plugins.dir and the extra settings on an HCL
// configuration, keeping everything else as written.
func rewriteConfig(src []byte, name, pluginsDir string, extra ...setting) ([]byte, error) {
	f, diags := hclwrite.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("config %s: %s", name, diags.Error())
	}
	body := f.Body()
	block := func(typ string) *hclwrite.Body {
		if b := body.FirstMatchingBlock(typ, nil); b != nil {
			return b.Body()
		}
		return body.AppendNewBlock(typ, nil).Body()
	}
	block("server").SetAttributeValue("host", cty.StringVal("127.0.0.1"))
	block("plugins").SetAttributeValue("dir", cty.StringVal(pluginsDir))
	for _, st := range extra {
		block(st.block).SetAttributeValue(st.name, st.value)
	}
	return f.Bytes(), nil
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		drop := false
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tail keeps the last lines written to it, for error reports.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  []byte
	total int
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.add(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	return len(p), nil
}

func (t *tail) add(line string) {
	t.total++
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// String returns the kept lines.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, l := range t.lines {
		b.WriteString("  | ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if len(t.part) > 0 {
		b.WriteString("  | ")
		b.Write(t.part)
		b.WriteByte('\n')
	}
	return b.String()
}

// Lines returns how many lines were written in total.
func (t *tail) Lines() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// buildPlugin builds the example plugin examples/NAME into dir and returns its path.
func buildPlugin(ctx context.Context, dir, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/rtserver/rtserver/examples/"+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./examples/%s: %w\n%s", name, err, stderr.String())
	}
	return out, nil
}

// scanLines is bufio.ScanLines for /proc files.
func scanLines(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
