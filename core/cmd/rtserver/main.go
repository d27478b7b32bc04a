// Command rtserver runs the real-time server, checks a configuration file, mints a client
// token from the configured secret, or calls a running server's HTTP API (ops.go).
//
//	rtserver [run] [--config config.hcl] [--check-config]
//	rtserver check-config [--config config.hcl]
//	rtserver token --user ID [--ttl 1h] [--config config.hcl]
//	rtserver conformance [--listen 127.0.0.1:3000]
//	rtserver push|broadcast|room|notify|status|plugins [--url URL] [--key KEY] [--sign v1|v2|none] [--json]
//	rtserver version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/conformance"
	"github.com/rtserver/rtserver/core/internal/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runServer(args, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "token":
		return mintToken(args, stdout, stderr)
	case "conformance":
		return serveConformance(args, stderr)
	case "version":
		fmt.Fprintln(stdout, server.Version)
		return 0
	case "push", "broadcast", "room", "notify", "status", "plugins":
		return runOp(cmd, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: rtserver [run|check-config|token|conformance|version] [flags]\n"+
			"       rtserver [push|broadcast|room|notify|status|plugins] [flags]  (call a running server's HTTP API)\n"+
			"rtserver CMD --help for a command's flags")
		return 0
	}
	fmt.Fprintf(stderr, "rtserver: unknown command %q (run, check-config, token, conformance, version, push, broadcast, room, notify, status, plugins)\n", cmd)
	return 2
}

func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "rtserver: configuration %s is not valid:\n%v\n", path, err)
		return nil, false
	}
	return cfg, true
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.hcl", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, ok := loadConfig(*path, stderr); !ok {
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

func mintToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.hcl", "configuration file (for the JWT secret and algorithm)")
	user := fs.String("user", "", "the token's userId (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	secret := fs.String("secret", "", "HMAC secret (default: auth.jwt_secret from the configuration)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *user == "" {
		fmt.Fprintln(stderr, "rtserver token: --user is required")
		return 2
	}
	key := *secret
	alg := "HS256"
	var iss, aud string
	if key == "" {
		cfg, ok := loadConfig(*path, stderr)
		if !ok {
			return 1
		}
		key = cfg.Auth.JWTSecret
		iss, aud = cfg.Auth.Issuer, cfg.Auth.Audience
		for _, a := range cfg.Auth.Algorithms {
			if a == "HS256" || a == "HS384" || a == "HS512" {
				alg = a
				break
			}
		}
	}
	if key == "" {
		fmt.Fprintln(stderr, "rtserver token: no JWT secret: set JWT_SECRET (or auth.jwt_secret), or pass --secret")
		return 1
	}
	tok, err := auth.MintFor([]byte(key), alg, *user, *ttl, iss, aud)
	if err != nil {
		fmt.Fprintf(stderr, "rtserver token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

func runServer(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.hcl", "configuration file")
	check := fs.Bool("check-config", false, "check the configuration and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to this file until the server stops")
	memProfile := fs.String("memprofile", "", "write an allocation profile (pprof: allocs since start, live heap) to this file when the server stops")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *check {
		return checkConfig([]string{"--config", *path}, os.Stdout, stderr)
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	log := newLogger(cfg, stderr)
	if generated := cfg.GenerateMissingSecrets(); len(generated) > 0 {
		announceDevSecrets(log, cfg, generated)
	}

	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("cannot build the server", "error", err)
		return 1
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			log.Error("cannot write the CPU profile", "path", *cpuProfile, "error", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	if *memProfile != "" {
		defer writeMemProfile(log, *memProfile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	<-ctx.Done()
	stop()
	log.Info("shutting down", "timeout", cfg.Server.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// serveConformance serves the protocol test suites' servers (package conformance) until
// interrupted. It reads no configuration: the suites fix every setting.
func serveConformance(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:3000", "address to serve /engine.io/ and /socket.io/ on (the suites use localhost:3000)")
	level := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "rtserver.conformance", Level: hclog.LevelFromString(*level), Output: stderr})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("cannot listen", "addr", *listen, "error", err)
		return 1
	}
	srv, err := conformance.Start(ln, log)
	if err != nil {
		_ = ln.Close()
		log.Error("cannot start", "error", err)
		return 1
	}
	// The handler is in place before the line that tells a supervisor we are up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("listening", "addr", srv.Addr().String(), "engine.io", "/engine.io/", "socket.io", "/socket.io/")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// writeMemProfile writes the allocation profile (every sampled allocation since start, and
// what of it is still live) as pprof's allocs profile.
func writeMemProfile(log hclog.Logger, path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		log.Error("cannot write the allocation profile", "path", path, "error", err)
	}
}

func newLogger(cfg *config.Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "rtserver",
		Level:      hclog.LevelFromString(cfg.Log.Level),
		JSONFormat: cfg.Log.Format == "json",
		Output:     w,
	})
}

// announceDevSecrets prints, in development only, the secrets generated for this run with a
// token and an API key ready to use, so that the quick start needs no setup.
func announceDevSecrets(log hclog.Logger, cfg *config.Config, generated []string) {
	log.Warn("development mode: generated secrets for this run only; set JWT_SECRET and API_KEY to keep them",
		"generated", generated)
	if cfg.Auth.JWTSecret != "" {
		if tok, err := auth.MintFor([]byte(cfg.Auth.JWTSecret), "HS256", "demo-user", 24*time.Hour,
			cfg.Auth.Issuer, cfg.Auth.Audience); err == nil {
			log.Info("client token for userId demo-user (24h)", "token", tok)
		}
		log.Info("JWT secret", "jwt_secret", cfg.Auth.JWTSecret)
	}
	for _, k := range cfg.API.Keys {
		log.Info("API key", "name", k.Name, "X-API-Key", k.Secret)
	}
	if pw := cfg.Admin.GeneratedPassword; pw != "" {
		log.Info("Admin UI login (set ADMIN_PASSWORD to keep it)", "url_path", cfg.Admin.UIPath, "username", cfg.Admin.Username, "password", pw)
	}
}
