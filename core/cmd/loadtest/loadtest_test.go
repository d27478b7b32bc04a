package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/proctest"
)

func TestEventName(t *testing.T) {
	tests := []struct {
		body string
		want string
		ok   bool
	}{
		{`["system:welcome",{"a":1},"off"]`, "system:welcome", true},
		{`12["ask",{}]`, "ask", true},
		{`["bench"]`, "bench", true},
		{`[]`, "", false},
		{`{"x":1}`, "", false},
		{`["no-end`, "", false},
		{`["esc\"aped",1]`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		got, ok := eventName([]byte(tt.body))
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("eventName(%q) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAckID(t *testing.T) {
	tests := []struct {
		body string
		want uint64
		ok   bool
	}{
		{`1[]`, 1, true},
		{`18446744073709551615[{"a":1}]`, 18446744073709551615, true},
		{`[]`, 0, false},
		{`12`, 0, false},
		{`7x[]`, 0, false},
	}
	for _, tt := range tests {
		got, ok := ackID([]byte(tt.body))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("ackID(%q) = %d, %v; want %d, %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift the fields.
	line := "4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 1000 200\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.utime != 250 || st.stime != 75 {
		t.Fatalf("parseStat = %+v, want ppid 17 utime 250 stime 75", st)
	}
	if _, err := parseStat([]byte("1 (x) S 0")); err == nil {
		t.Fatal("parseStat accepted a short line")
	}
	d, err := procCPU(os.Getpid())
	if err != nil || d < 0 {
		t.Fatalf("procCPU(self) = %v, %v", d, err)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\trtserver\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n"
	got, err := parseVMRSS([]byte(status))
	if err != nil || got != 20480*1024 {
		t.Fatalf("parseVMRSS = %d, %v; want %d", got, err, 20480*1024)
	}
	if _, err := parseVMRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("parseVMRSS accepted a status without VmRSS")
	}
	if n, err := procRSS(os.Getpid()); err != nil || n <= 0 {
		t.Fatalf("procRSS(self) = %d, %v", n, err)
	}
}

func TestParseBusy(t *testing.T) {
	stat := "cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
	got, err := parseBusy([]byte(stat))
	if want := 161 * clockTick; err != nil || got != want {
		t.Fatalf("parseBusy = %v, %v; want %v", got, err, want)
	}
	if _, err := parseBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("parseBusy accepted a file without the cpu line")
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{.5, 50}, {.99, 99}, {1, 100}, {.001, 1}} {
		if got := percentile(s, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := percentile(nil, .5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
	m := merge([][]time.Duration{{3, 1}, {2}})
	if len(m) != 3 || m[0] != 1 || m[2] != 3 {
		t.Errorf("merge = %v", m)
	}
}

func TestRewriteConfig(t *testing.T) {
	src, err := os.ReadFile("../../../examples/config/loadtest.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, err := rewriteConfig(src, "loadtest.hcl", filepath.Join(dir, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.hcl")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWT_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret")
	t.Setenv("API_KEY", "key-key-key-key-key")
	t.Setenv("PORT", "4321")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("rewritten config does not load: %v\n%s", err, out)
	}
	if cfg.Server.Host != "127.0.0.1" || cfg.Server.Port != 4321 || cfg.Plugins.Dir != filepath.Join(dir, "plugins") {
		t.Fatalf("host %q port %d plugins %q", cfg.Server.Host, cfg.Server.Port, cfg.Plugins.Dir)
	}
	// What loadtest.hcl sets is kept.
	if cfg.RateLimit.Enabled || cfg.SocketIO.MaxConnectionsPerIP != 200000 {
		t.Fatalf("rate limit %v, per-IP cap %d: settings of the source were lost", cfg.RateLimit.Enabled, cfg.SocketIO.MaxConnectionsPerIP)
	}

	// An existing host and plugins block are overridden, not duplicated.
	out, err = rewriteConfig([]byte("server {\n  host = \"0.0.0.0\"\n}\nplugins {\n  dir = \"x\"\n  max_in_flight = 9\n}\n"), "x.hcl", "/p")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Count(s, "host") != 1 || !strings.Contains(s, `"127.0.0.1"`) || strings.Count(s, "dir") != 1 ||
		!strings.Contains(s, `"/p"`) || !strings.Contains(s, "max_in_flight = 9") {
		t.Fatalf("rewritten:\n%s", s)
	}
	if _, err := rewriteConfig([]byte("server {"), "bad.hcl", "/p"); err == nil {
		t.Fatal("rewriteConfig accepted broken HCL")
	}
}

func TestPrintTable(t *testing.T) {
	rows := []row{
		atMost("rss", "per conn", 6.5, 8, "%.2f KB"),
		below("storm", "p99", 120, 100, "%.2f ms"),
		atLeast("plugin", "rt/s", 50000, 40000, "%.0f"),
		info("ack", "a|b", "1"),
	}
	if rows[0].Verdict != "ok" || rows[1].Verdict != "MISSED" || rows[2].Verdict != "ok" || rows[3].Verdict != "" {
		t.Fatalf("verdicts: %+v", rows)
	}
	var md bytes.Buffer
	printTable(&md, rows, true)
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[1], "| --- |") || !strings.Contains(md.String(), `a\|b`) {
		t.Fatalf("markdown:\n%s", md.String())
	}
	if !strings.Contains(lines[2], "| 6.50 KB | <= 8.00 KB | ok |") {
		t.Fatalf("markdown row: %s", lines[2])
	}
	var txt bytes.Buffer
	printTable(&txt, rows, false)
	if !strings.Contains(txt.String(), "MISSED") || strings.Contains(txt.String(), "|") && !strings.Contains(txt.String(), "a|b") {
		t.Fatalf("text:\n%s", txt.String())
	}
}

func TestPick(t *testing.T) {
	all, err := pick("all")
	if err != nil || len(all) != 8 {
		t.Fatalf("pick(all) = %d, %v", len(all), err)
	}
	two, err := pick("storm, rss")
	if err != nil || len(two) != 2 || two[0].name != "storm" || two[1].name != "rss" {
		t.Fatalf("pick(storm, rss) = %v, %v", two, err)
	}
	if _, err := pick("rss,nope"); err == nil {
		t.Fatal("pick accepted an unknown scenario")
	}
	for _, s := range all {
		if s.name == "soak" {
			t.Fatal("all includes soak")
		}
	}
	withSoak, err := pick("all,soak")
	if err != nil || len(withSoak) != 9 || withSoak[8].name != "soak" {
		t.Fatalf("pick(all,soak) = %d, %v", len(withSoak), err)
	}
}

func TestTail(t *testing.T) {
	tl := newTail(2)
	tl.Write([]byte("one\ntwo\nth"))
	tl.Write([]byte("ree\nfour"))
	if got := tl.String(); got != "  | two\n  | three\n  | four\n" || tl.Lines() != 3 {
		t.Fatalf("tail = %q (%d lines)", got, tl.Lines())
	}
}

func TestFlagsRejected(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "bogus"},
		{"-conns", "10", "-rss-base", "20"},
		{"-duration", "0s"},
		{"-scenario", "soak", "-soak-duration", "0s"},
		{"-scenario", "soak", "-soak-slow", "-1"},
		{"-no-such-flag"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("run(%v) = %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

// TestScenarios runs every scenario, scaled down, against the real server binary and the
// echo plugin, built for the test.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := serverBinary(t)
	before := runtime.NumGoroutine()
	var out, errb bytes.Buffer
	code := run([]string{
		"-server", bin, "-config", "../../../examples/config/loadtest.hcl", "-markdown",
		"-conns", "60", "-rss-base", "20", "-settle", "100ms",
		"-room-size", "20", "-room-messages", "10", "-unbatched-messages", "5", "-unbatched-rate", "50",
		"-ack-conns", "5", "-storm-conns", "40", "-storm-rate", "400", "-plugin-conns", "3",
		"-warmup", "200ms", "-duration", "300ms", "-timeout", "40s",
	}, &out, &errb)
	if code != 0 {
		t.Fatalf("run = %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	table := out.String()
	for _, want := range []string{
		"| rss | RSS per idle connection (marginal, 20 -> 60) |",
		"| room | deliveries | 200 (10 POSTs x 20 sockets) |",
		"| room | server CPU per delivery |",
		"| room-unbatched | deliveries | 100 (5 POSTs x 20 sockets) |",
		"| room-unbatched | server CPU per delivery / small-write floor |",
		"| room-unbatched | small-write floor, between the POSTs |",
		"| room-unbatched | server write calls per delivery (unbatched) |",
		"| rss-register | RSS per idle registered connection (marginal, 20 -> 60) |",
		"| rss-register | of which Go heap in use, per connection |",
		"| rss-register | of which goroutine stacks, per connection |",
		"| ack | server CPU per ack round trip |",
		"| ack | server CPU per ack round trip / echo floor |",
		"| storm | failed connects | 0 | <= 0 | ok |",
		"| plugin | failed round trips | 0 | <= 0 | ok |",
		"| plugin | round trips/s |",
		"| floor | CPU per echo round trip, per side |",
		"| floor | CPU per small write to one of many sockets |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "FAILED") {
		t.Errorf("a scenario failed:\n%s\nstderr:\n%s", table, errb.String())
	}
	checkGoroutines(t, before)
}

// checkGoroutines fails if the tool's goroutines do not come back to before: every
// connection, reader and HTTP keep-alive ends with the run.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// The server binary, built once for the tests that run it.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "loadtest-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "rtserver")
		buildErr = proctest.Build(binPath, proctest.ServerPackage)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestSoak runs the soak scenario for a few seconds with a few clients of each kind, against
// the real server binary and the echo and chat plugins, built for the test.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := serverBinary(t)
	before := runtime.NumGoroutine()
	var out, errb bytes.Buffer
	code := run([]string{
		"-server", bin, "-config", "../../../examples/config/loadtest.hcl", "-markdown", "-scenario", "soak",
		"-soak-duration", "4s", "-soak-clients", "3", "-soak-slow", "1", "-soak-churn", "2", "-soak-rate", "20",
		// make test runs other packages beside this one: a slow answer is not what this
		// test is about, a missed or hung one is.
		"-soak-health-timeout", "5s", "-settle", "300ms", "-timeout", "40s",
	}, &out, &errb)
	table := out.String()
	if code != 0 {
		t.Fatalf("run = %d\nstdout:\n%s\nstderr:\n%s", code, table, errb.String())
	}
	for _, want := range []string{
		"| soak | result | PASS |",
		"| soak | room messages lost, well-behaved clients | 0 | <= 0 | ok |",
		"| soak | requests failed or unanswered | 0 | <= 0 | ok |",
		"| soak | room messages lost across recoveries | 0 | <= 0 | ok |",
		"| soak | server goroutines over warm-up |",
		"| soak | server fds over warm-up |",
		"| soak | server heap in use over warm-up |",
		"| soak | slow readers dropped by the server |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// The churning clients did reconnect, and every reconnection recovered its session.
	m := regexp.MustCompile(`\| soak \| churn reconnections / recovered \| (\d+) / (\d+) \|`).FindStringSubmatch(table)
	if m == nil || m[1] == "0" || m[1] != m[2] {
		t.Errorf("churn: %v\n%s", m, table)
	}
	checkGoroutines(t, before)
}

func TestSeqCheck(t *testing.T) {
	q := seqCheck{next: -1}
	for _, n := range []int64{5, 6, 8, 8, 7, 9} {
		q.see(n)
	}
	if q.got.Load() != 4 || q.gaps.Load() != 1 || q.dups.Load() != 2 || q.next != 10 {
		t.Fatalf("got %d gaps %d dups %d next %d; want 4 1 2 10", q.got.Load(), q.gaps.Load(), q.dups.Load(), q.next)
	}
	if n, ok := roomSeq([]byte(`42["soak:room",{"pad":"xx","seq":1234},"ab-17"]`)); !ok || n != 1234 {
		t.Fatalf("roomSeq = %d, %v", n, ok)
	}
	if _, ok := roomSeq([]byte(`42["soak:room",{"seq":"x"}]`)); ok {
		t.Fatal("roomSeq accepted a string")
	}
}

func TestLastOffset(t *testing.T) {
	for _, tt := range []struct {
		pkt, want string
		ok        bool
	}{
		{`42["soak:room",{"seq":1},"a1b2c3d4-17"]`, "a1b2c3d4-17", true},
		{`42["x","y"]`, "y", true},
		{`42["x",{"a":"b"}]`, "", false},
		{`42["only"]`, "", false},
		{`42["x","a\"b"]`, "", false},
	} {
		got, ok := lastOffset([]byte(tt.pkt))
		if got != tt.want || ok != tt.ok {
			t.Errorf("lastOffset(%s) = %q, %v; want %q, %v", tt.pkt, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseMetric(t *testing.T) {
	text := `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds_sum 0.004
go_gc_duration_seconds_count 42
go_goroutines 17
`
	if v := parseMetric(strings.NewReader(text), "go_gc_duration_seconds_count"); v != 42 {
		t.Errorf("count = %v, want 42", v)
	}
	if v := parseMetric(strings.NewReader(text), "go_gc_duration_seconds"); v != -1 {
		t.Errorf("labelled-only metric = %v, want -1", v)
	}
	if v := parseMetric(strings.NewReader(text), "missing"); v != -1 {
		t.Errorf("missing = %v, want -1", v)
	}
}
