package sdk

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// stderr is the process's real stderr, kept before go-plugin redirects os.Stderr: the
// core reads the JSON lines written there and logs each under the plugin's name, at its
// own level.
var stderr io.Writer = os.Stderr

// logLevel is the core's log level, passed down so that a plugin does not format lines
// the core would drop anyway.
var logLevel = levelFromEnv()

var logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel, ReplaceAttr: coreKeys}))

// levelTrace is the level of the core's "trace", below slog's Debug.
const levelTrace = slog.LevelDebug - 4

func levelFromEnv() slog.Level {
	switch strings.ToLower(os.Getenv(pluginv1.LogLevelEnv)) {
	case "trace":
		return levelTrace
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// coreKeys writes a record's time, level and message under the names the core reads
// (hclog's JSON format): @timestamp, @level, @message.
func coreKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
	case slog.LevelKey:
		l, _ := a.Value.Any().(slog.Level)
		name := "info"
		switch {
		case l < slog.LevelDebug:
			name = "trace"
		case l < slog.LevelInfo:
			name = "debug"
		case l < slog.LevelWarn:
			name = "info"
		case l < slog.LevelError:
			name = "warn"
		default:
			name = "error"
		}
		return slog.String("@level", name)
	case slog.MessageKey:
		return slog.String("@message", a.Value.String())
	}
	return a
}

// Logger returns the plugin's logger. Its records appear in the server's log under the
// plugin's name, at their own level; records below the server's level are dropped here.
func Logger() *slog.Logger { return logger }

// Serve runs p as a plugin of the core and returns when the core stops it. It is meant to
// be the whole of a plugin's main.
//
// It first checks p against what it routes: a plugin whose Info names events, messages or
// actions without the matching handler (OnEvent, OnMessage, OnAction with exactly the
// signatures of EventHandler, MessageHandler and ActionHandler), or with a handler or
// Configure of another signature, does not start: Serve logs why, naming the route and
// the method, and exits with status 1; the core then reports the plugin as failed with
// that message. Started by hand (not by the core), a plugin prints a short explanation
// and exits.
func Serve(p Plugin) {
	if err := check(p); err != nil {
		logger.Error(err.Error())
		os.Exit(1)
	}
	watchLifeline()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  pluginv1.ProtocolVersion,
			MagicCookieKey:   pluginv1.MagicCookieKey,
			MagicCookieValue: pluginv1.MagicCookieValue,
		},
		Plugins: plugin.PluginSet{pluginv1.PluginSetName: &grpcPlugin{impl: p}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(wire.MaxMessageBytes))...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Level:      hclog.LevelFromString(levelName(logLevel)),
			Output:     stderr,
			JSONFormat: true,
		}),
	})
}

func levelName(l slog.Level) string {
	return coreKeys(nil, slog.Any(slog.LevelKey, l)).Value.String()
}

// watchLifeline exits the process once the core is gone: the core holds the write end of
// a pipe whose read end we inherit; the kernel closes it however the core dies (even
// SIGKILL), and the read returns.
func watchLifeline() {
	fd, err := strconv.Atoi(os.Getenv(pluginv1.LifelineFDEnv))
	if err != nil || fd < 3 {
		return
	}
	f := os.NewFile(uintptr(fd), "lifeline")
	if f == nil {
		return
	}
	go func() {
		_, _ = io.Copy(io.Discard, f)
		logger.Debug("core is gone; exiting")
		killOwnGroup()
		os.Exit(0)
	}()
}

// grpcPlugin is the go-plugin glue: it registers our service on the plugin's gRPC server.
// The client half lives in the core.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (g *grpcPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServer(s, newServer(g.impl, logger, broker))
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the plugin client lives in the core")
}
