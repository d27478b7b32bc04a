package pluginhost

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// pipeWaitDelay bounds how long a stopped plugin's stdout and stderr may stay open
// after its process group is gone: a descendant that left the group (setsid) and kept
// them open must not hold up a reload, a restart or shutdown.
const pipeWaitDelay = 2 * time.Second

// groupRunner runs a plugin in a process group of its own, as go-plugin's Runner.
//
// Why not go-plugin's own runner: it reads the plugin's stdout and stderr until EOF
// before it reaps the process, so a child the plugin started (a shell script's sleep)
// that inherited them stalls every stop, reload and restart until that child exits.
// Here, as soon as the plugin process exits, the rest of its group is killed, and the
// pipes are closed at most pipeWaitDelay later whatever still holds them. Its own group
// also keeps a terminal's Ctrl-C, meant for the server, away from the plugins: the
// server stops them itself.
type groupRunner struct {
	cmd        *exec.Cmd
	outR, errR *io.PipeReader
	outW, errW *io.PipeWriter
	pid        int

	// mu orders group kills against start and reaping: once reaped is set the
	// leader's pid (the group's id) may be reused, so the group is never signalled
	// again; once killed is set the process is never started.
	mu     sync.Mutex
	reaped bool
	killed bool

	done chan struct{}
	err  error // the leader's exit, set before done is closed
}

var _ runner.Runner = (*groupRunner)(nil)

// newGroupRunner prepares path to run with spec's environment (go-plugin's
// handshake variables and the host's environment) followed by env, and extra as
// fds 3 and up.
func newGroupRunner(spec *exec.Cmd, path string, env []string, extra []*os.File) *groupRunner {
	cmd := exec.Command(path)
	cmd.Env = append(append([]string(nil), spec.Env...), env...)
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = pipeWaitDelay
	r := &groupRunner{cmd: cmd, done: make(chan struct{})}
	// Writers that are not *os.File: exec copies the process's pipes into them and
	// Wait gives up on that copy pipeWaitDelay after the exit; closing them then ends
	// go-plugin's readers with a clean EOF.
	r.outR, r.outW = io.Pipe()
	r.errR, r.errW = io.Pipe()
	cmd.Stdout, cmd.Stderr = r.outW, r.errW
	return r
}

func (r *groupRunner) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := errors.New("plugin host is closing")
	if !r.killed {
		err = r.cmd.Start()
	}
	if err != nil {
		r.outW.Close()
		r.errW.Close()
		return err
	}
	r.pid = r.cmd.Process.Pid
	go r.wait()
	return nil
}

// wait waits for the plugin process to exit, kills what is left of its group while the
// exited leader still holds the group's id, then reaps it.
func (r *groupRunner) wait() {
	var err error
	if waitsWithoutReaping {
		waitExited(r.pid)
		r.mu.Lock()
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		r.reaped = true
		r.mu.Unlock()
		err = r.cmd.Wait()
	} else {
		err = r.cmd.Wait()
		r.mu.Lock()
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		r.reaped = true
		r.mu.Unlock()
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // the process itself exited cleanly; a stray descendant held its pipes
	}
	r.outW.Close()
	r.errW.Close()
	r.err = err
	close(r.done)
}

// Kill kills the plugin's whole process group.
func (r *groupRunner) Kill(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	if r.pid > 0 && !r.reaped {
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
	}
	return nil
}

func (r *groupRunner) Wait(context.Context) error {
	<-r.done
	return r.err
}

func (r *groupRunner) Stdout() io.ReadCloser { return r.outR }
func (r *groupRunner) Stderr() io.ReadCloser { return r.errR }
func (r *groupRunner) Name() string          { return r.cmd.Path }
func (r *groupRunner) Diagnose(context.Context) string {
	return "the file must be a plugin built with the rtserver SDK (sdk.Serve) for this platform"
}

func (r *groupRunner) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid == 0 {
		return ""
	}
	return strconv.Itoa(r.pid)
}

func (r *groupRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *groupRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// runnerSlot hands the runner go-plugin asks for to the code that may need to kill it
// before go-plugin's start-up returns (the host closing while a plugin loads).
type runnerSlot struct {
	mu     sync.Mutex
	r      *groupRunner
	killed bool
}

// kill kills the runner's group, or keeps the runner made later from starting.
func (s *runnerSlot) kill() {
	s.mu.Lock()
	r := s.r
	s.killed = true
	s.mu.Unlock()
	if r != nil {
		_ = r.Kill(context.Background())
	}
}

// make is the RunnerFunc for go-plugin.
func (s *runnerSlot) make(path string, env []string, extra []*os.File) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
		r := newGroupRunner(spec, path, env, extra)
		s.mu.Lock()
		s.r = r
		if s.killed {
			r.killed = true // not started yet: no one else holds it
		}
		s.mu.Unlock()
		return r, nil
	}
}

// exitedByItself reports whether the plugin process has ended and did so by itself, not by
// a signal (as a plugin the SDK refuses to serve does).
func (s *runnerSlot) exitedByItself() bool {
	s.mu.Lock()
	r := s.r
	s.mu.Unlock()
	if r == nil {
		return false
	}
	select {
	case <-r.done:
	default:
		return false
	}
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		return ok && !ws.Signaled()
	}
	return r.err == nil
}
