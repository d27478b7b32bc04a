package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/go-hclog"
)

// The cluster-node scenario is the cluster scenario run on two Node.js socket.io 4.8.4
// servers with @socket.io/redis-adapter 8.3.0 (noderef/server.js), as the reference our
// figures are compared with: same clients, same HTTP calls, same table.
func init() {
	extraScenarios = append(extraScenarios, scenario{"cluster-node", (*runner).clusterNode})
}

func (r *runner) clusterNode(ctx context.Context) ([]row, error) {
	dir, err := nodeRefDir()
	if err != nil {
		return nil, err
	}
	if err := nodeRefInstall(ctx, dir, r.log); err != nil {
		return nil, err
	}
	return r.clusterOf(ctx, "cluster-node", func(ctx context.Context, spec serverSpec, rds *redisProc) (*serverProc, error) {
		return startNodeRef(ctx, dir, rds, spec.keep, r.log)
	})
}

// nodeRefDir finds the reference's folder from the repository's root (make bench, go run)
// or from this package's folder (go test).
func nodeRefDir() (string, error) {
	for _, d := range []string{"core/cmd/loadtest/noderef", "noderef"} {
		if _, err := os.Stat(filepath.Join(d, "package-lock.json")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", errors.New("cluster-node: core/cmd/loadtest/noderef not found: run from the repository's root")
}

// nodeRefInstall runs npm ci in the reference's folder the first time it is needed: the
// lock file pins every package, so the reference is the same on every machine.
func nodeRefInstall(ctx context.Context, dir string, log hclog.Logger) error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("cluster-node: node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io", "package.json")); err == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("cluster-node: npm is not installed")
	}
	log.Info("installing the Node reference", "dir", dir)
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster-node: npm ci in %s: %w\n%s", dir, err, out)
	}
	return nil
}

// startNodeRef starts one reference server on a free port with the private Redis. It is a
// serverProc like rtserver's, so the scenario reads its CPU, polls its /health and stops
// it the same way; its folder holds only its log.
func startNodeRef(ctx context.Context, dir string, rds *redisProc, keep bool, log hclog.Logger) (*serverProc, error) {
	tmp, err := os.MkdirTemp("", "rtserver-loadtest-node-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s := &serverProc{dir: tmp, log: log, exited: make(chan struct{}), logTail: newTail(40)}
	ok := false
	defer func() {
		if !ok && !keep {
			os.RemoveAll(tmp)
		}
	}()
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	s.secret, s.apiKey = randomHex(32), randomHex(24)
	s.logPath = filepath.Join(tmp, "server.log")
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		logFile.Close()
		return nil, errors.New("cluster-node: node is not installed")
	}
	s.cmd = exec.Command(node, "server.js")
	s.cmd.Dir = dir
	s.cmd.Env = append(withoutEnv(os.Environ(), "API_KEY", "PORT", "REDIS_URL"),
		"API_KEY="+s.apiKey, "PORT="+strconv.Itoa(s.port), "REDIS_URL=redis://"+rds.addr()+"/0")
	if err := s.launch(ctx, logFile, "node"); err != nil {
		return nil, err
	}
	log.Debug("node reference started", "pid", s.pid, "port", s.port)
	ok = true
	return s, nil
}
