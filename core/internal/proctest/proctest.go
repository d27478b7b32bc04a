// Package proctest builds the rtserver binary and runs it as a process for tests that need
// the real thing: its command line, signals and exit codes, or nodes that can be killed.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"
)

// ServerPackage is the import path of the rtserver command.
const ServerPackage = "github.com/rtserver/rtserver/core/cmd/rtserver"

// Build compiles the Go package pkg (an import path, or a directory relative to the working
// directory) into the file out. It takes no *testing.T so TestMain can build once for all.
func Build(out, pkg string) error {
	b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Logs collects a process's log lines while the test reads them.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// WriteString appends s.
func (l *Logs) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

// String is everything collected so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listenLine is the log line the server writes once it accepts connections.
var listenLine = regexp.MustCompile(`listening: addr=([0-9.:]+)`)

// StartTimeout bounds how long Start waits for the listening line.
const StartTimeout = 30 * time.Second

// Start starts cmd (a prepared rtserver command line), collects its stderr into Logs and
// waits for its listening line, returning the address it listens on. The test's end kills
// the process; a process that exits or does not listen within StartTimeout fails the test
// with its logs.
func Start(t testing.TB, cmd *exec.Cmd) (string, *Logs) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	logs := &Logs{}
	addr := make(chan string, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logs.WriteString(line + "\n")
			if m := listenLine.FindStringSubmatch(line); m != nil {
				// Only the first listening line counts; later ones must not stall the reader.
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return a, logs
	case <-ended:
		// Its stderr closed before a listening line: the process is exiting, so say why
		// now rather than after the timeout.
		select {
		case a := <-addr:
			return a, logs
		default:
		}
		t.Fatalf("the server exited before listening:\n%s", logs)
		return "", nil
	case <-time.After(StartTimeout):
		t.Fatalf("the server did not start:\n%s", logs)
		return "", nil
	}
}
