package sdk

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"google.golang.org/grpc"
)

// logger writes JSON lines to the process's real stderr, captured here before
// go-plugin redirects os.Stderr: the core parses these lines and logs them under
// the plugin's name at their own level.
var logger = hclog.New(&hclog.LoggerOptions{
	Level:      levelFromEnv(),
	Output:     os.Stderr,
	JSONFormat: true,
})

func levelFromEnv() hclog.Level {
	if l := hclog.LevelFromString(os.Getenv(pluginv1.LogLevelEnv)); l != hclog.NoLevel {
		return l
	}
	return hclog.Info
}

// Logger returns the plugin's logger; its lines appear in the core's log under
// the plugin's name.
func Logger() hclog.Logger { return logger }

// Serve runs p as a plugin of the core and returns when the core stops it. It is
// meant to be the whole of a plugin's main. Started by hand (not by the core) it
// prints a short explanation and exits.
func Serve(p Plugin) {
	watchLifeline()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  pluginv1.ProtocolVersion,
			MagicCookieKey:   pluginv1.MagicCookieKey,
			MagicCookieValue: pluginv1.MagicCookieValue,
		},
		Plugins: plugin.PluginSet{pluginv1.PluginSetName: &grpcPlugin{impl: p}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			// gRPC's default 4 MB would turn one batch of large requests into a
			// broken stream; the core bounds what it sends.
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(64<<20))...)
		},
		Logger: logger.Named("go-plugin"),
	})
}

// watchLifeline exits the process once the core is gone: the core holds the
// write end of a pipe whose read end we inherit; the kernel closes it however the
// core dies (even SIGKILL), and the read returns.
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

// grpcPlugin is the go-plugin glue: it registers our service on the plugin's gRPC
// server. The client half lives in the core.
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
