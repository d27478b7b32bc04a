// Package server wires the pieces of the product together from the configuration: the
// Socket.IO endpoint with its JWT and rate-limit middleware, the hub, the plugin host and the
// HTTP API, on one listener (or two), and owns start-up and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/admin"
	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/cluster"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/engineio"
	"github.com/rtserver/rtserver/core/internal/httpapi"
	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/metrics"
	"github.com/rtserver/rtserver/core/internal/pluginhost"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Version is the server's version, set at build time with -ldflags.
var Version = "dev"

// Server is one node of the product.
type Server struct {
	cfg     *config.Config
	log     hclog.Logger
	metrics *metrics.Metrics
	io      *socketio.Server
	hub     *hub.Hub
	api     *httpapi.API
	plugins *pluginhost.Host
	guard   *connGuard
	cluster *cluster.Adapter // nil on a single node
	shared  *cluster.Shared  // limits across the cluster; nil on a single node
	web     *web
	// recStore keeps recovery state in Redis; nil on a single node or without recovery.
	recStore *cluster.RecoveryStore
	admin    *admin.Admin // nil unless admin.Active (admin.go)

	mu      sync.Mutex
	main    *engineio.HTTPServer
	apiSrv  *engineio.HTTPServer
	apiLn   net.Listener
	started bool
}

// New builds a server from a validated configuration. Nothing listens until Start.
func New(cfg *config.Config, log hclog.Logger) (_ *Server, err error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{cfg: cfg, log: log, metrics: metrics.New()}
	defer func() {
		if err != nil && s.cluster != nil {
			_ = s.cluster.Close()
		}
		if err != nil && s.recStore != nil {
			_ = s.recStore.Close()
		}
	}()

	verifier, err := auth.NewVerifier(auth.Options{
		Secret:        []byte(cfg.Auth.JWTSecret),
		Algorithms:    cfg.Auth.Algorithms,
		PublicKeyFile: cfg.Auth.PublicKeyFile,
		Issuer:        cfg.Auth.Issuer,
		Audience:      cfg.Auth.Audience,
		Leeway:        cfg.Auth.Leeway,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}

	sio := cfg.SocketIO
	ioOpts := socketio.Options{
		Path:             sio.Path,
		PingInterval:     sio.PingInterval,
		PingTimeout:      sio.PingTimeout,
		MaxPayload:       sio.MaxPayload,
		Transports:       sio.Transports,
		AllowedOrigins:   sio.CORSOrigins,
		ConnectTimeout:   sio.ConnectTimeout,
		MaxOutboundBytes: sio.MaxOutboundBytes,
		// Until CONNECT is accepted only a small CONNECT is taken.
		MaxConnectPayload: sio.MaxConnectPayload,
		// The hub's handlers never block: a client:* request is handed to the plugin
		// host, which answers from its own goroutine, or queued for a per-socket runner.
		NonBlockingHandlers: true,
		Logger:              log,
		// The hub's routing members are read by the pass that validates each packet.
		ArgMembers: hub.ArgMembers(),
	}
	if cfg.Recovery.Enabled {
		ioOpts.Recovery = &socketio.RecoveryOptions{
			MaxDisconnection: cfg.Recovery.MaxDisconnectionDuration,
			MaxPackets:       cfg.Recovery.MaxPacketsPerSession,
			MaxTotalPackets:  cfg.Recovery.MaxPacketsTotal,
			MaxTotalBytes:    cfg.Recovery.MaxBytesTotal,
			OnOverflow: func() {
				s.metrics.Recovery.WithLabelValues(metrics.RecoveryDroppedPackets).Inc()
			},
		}
		// In a cluster, sessions and missed packets are kept in Redis (cluster/recovery.go),
		// so a client recovers on any node, also after its node died.
		if cfg.Cluster.Enabled() {
			redisOpts, err := cfg.Cluster.RedisOptions()
			if err != nil {
				return nil, err
			}
			s.recStore, err = cluster.NewRecoveryStore(cluster.RecoveryOptions{
				RedisURL:       cfg.Cluster.RedisURL,
				Redis:          redisOpts,
				KeyPrefix:      cfg.Cluster.KeyPrefix,
				MaxLen:         cfg.Recovery.MaxPacketsTotal,
				StreamTTL:      2 * cfg.Recovery.MaxDisconnectionDuration,
				ConnectTimeout: cfg.Cluster.ConnectTimeout,
			})
			if err != nil {
				return nil, err
			}
			r := ioOpts.Recovery
			r.Shared = s.recStore
			r.MarshalSession, r.UnmarshalSession = hub.MarshalSession, hub.UnmarshalSession
			r.OnStoreFailure = func() {
				s.metrics.Recovery.WithLabelValues(metrics.RecoveryStoreFailed).Inc()
			}
		}
	}
	rl := cfg.RateLimit
	connRate, msgRate := 0, 0
	if rl.Enabled {
		connRate, msgRate = rl.WSConnectionsPerMinute, rl.WSMessagesPerMinute
	}
	s.guard = newConnGuard(guardOptions{
		MaxConnections:      sio.MaxConnections,
		MaxConnectionsPerIP: sio.MaxConnectionsPerIP,
		ConnectionsPerMin:   connRate,
		MaxKeys:             rl.MaxKeys,
		TrustedProxies:      cfg.Server.TrustedProxyPrefixes(),
		Verifier:            verifier,
		DisconnectOnExpiry:  cfg.Auth.DisconnectOnExpiry,
		Metrics:             s.metrics,
		Logger:              log.Named("auth"),
	})
	ioOpts.AdmitHandshake = s.guard.admit
	if cfg.Admin.Active() {
		ioOpts.Namespaces = []string{admin.Namespace}
	}
	s.io = socketio.NewServer(ioOpts)
	s.io.Use(s.connectMiddleware)
	if s.admin, err = s.newAdmin(cfg, log); err != nil {
		return nil, err
	}

	// The hub reaches sockets through the in-memory adapter on a single node, and through
	// the Redis adapter wrapping it when the node joins a cluster.
	var fan hub.Adapter = hub.NewMemoryAdapter(s.io)
	if cfg.Cluster.Enabled() {
		redisOpts, err := cfg.Cluster.RedisOptions()
		if err != nil {
			return nil, err
		}
		s.cluster, err = cluster.New(fan, s.io.EmitTo, cluster.Options{
			RedisURL:       cfg.Cluster.RedisURL,
			Redis:          redisOpts,
			KeyPrefix:      cfg.Cluster.KeyPrefix,
			ConnectTimeout: cfg.Cluster.ConnectTimeout,
			RequestTimeout: cfg.Cluster.RequestTimeout,
			Sockets:        s.io,
			Logger:         log.Named("cluster"),
			Registerer:     s.metrics.Registry,
		})
		if err != nil {
			return nil, err
		}
		if s.recStore != nil {
			s.cluster.EnableRecovery(s.recStore, s.io.EmitAt)
		}
		fan = s.cluster
	}
	if s.admin != nil {
		fan = s.admin.Wrap(fan)
		s.linkAdmin()
	}
	s.hub = hub.New(hub.Options{
		Version:           Version,
		Environment:       cfg.Environment,
		MaxEventNameLen:   sio.MaxEventNameLength,
		MaxRoomNameLen:    sio.MaxRoomNameLength,
		MaxRoomsPerSocket: sio.MaxRoomsPerSocket,
		MaxJSONDepth:      sio.MaxJSONDepth,
		MessagesPerMinute: msgRate,
		Logger:            log.Named("hub"),
	}, fan, s.metrics)
	s.io.OnConnection(func(so *socketio.Socket) {
		if so.Namespace() == admin.Namespace {
			s.admin.HandleConnection(so)
			return
		}
		s.guard.onConnection(so)
		s.hub.HandleConnection(so)
		if s.admin != nil {
			s.admin.SocketConnected(so)
		}
	})

	plugins := make([]pluginhost.PluginConfig, 0, len(cfg.Plugin))
	for _, p := range cfg.Plugin {
		plugins = append(plugins, pluginhost.PluginConfig{
			Name: p.Name, Events: p.Events, Messages: p.Messages, Actions: p.Actions,
			Timeout: p.Timeout, MaxInFlight: p.MaxInFlight, SHA256: p.SHA256, Config: p.Config,
		})
	}
	s.plugins, err = pluginhost.New(pluginhost.Options{
		Dir:            cfg.Plugins.Dir,
		DefaultTimeout: cfg.Plugins.DefaultTimeout,
		MaxInFlight:    cfg.Plugins.MaxInFlight,
		DrainTimeout:   cfg.Plugins.DrainTimeout,
		Plugins:        plugins,
		Logger:         log.Named("plugins"),
		Registerer:     s.metrics.Registry,
	}, s.hub.PluginHost())
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	s.hub.SetDispatcher(s.plugins)

	keys := make([]httpapi.Key, 0, len(cfg.API.Keys))
	for _, k := range cfg.API.Keys {
		keys = append(keys, httpapi.Key{Name: k.Name, Secret: k.Secret, Scopes: k.Scopes})
	}
	httpRate, failRate := 0, 0
	if rl.Enabled {
		httpRate, failRate = rl.HTTPRequestsPerMinute, rl.HTTPFailedAuthPerMinute
	}
	metricsPath := ""
	if cfg.Metrics.Enabled {
		metricsPath = cfg.Metrics.Path
	}
	apiOpts := httpapi.Options{
		Keys:         keys,
		MaxBodyBytes: cfg.API.MaxBodyBytes,
		Environment:  cfg.Environment,
		Version:      Version,
		Signing: httpapi.Signing{
			Required:       cfg.API.Signing.Required,
			RequiredRoutes: cfg.API.Signing.RequiredRoutes,
			Window:         cfg.API.Signing.Window,
			MinVersion:     cfg.API.Signing.MinVersion,
		},
		RequestsPerMinute:   httpRate,
		FailedAuthPerMinute: failRate,
		MaxLimiterKeys:      rl.MaxKeys,
		MaxEventNameLength:  sio.MaxEventNameLength,
		MaxRoomNameLength:   sio.MaxRoomNameLength,
		TrustedProxies:      cfg.Server.TrustedProxies,
		MetricsPath:         metricsPath,
		Logger:              log.Named("api"),
	}
	if s.cluster != nil {
		s.shareLimits(cfg, &apiOpts)
	}
	s.api, err = httpapi.New(apiOpts, apiHub{Hub: s.hub, cluster: s.cluster}, s.metrics, pluginList{s.plugins})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.web = newWeb(s)
	return s, nil
}

// apiHub is the hub as the HTTP API sees it.
type apiHub struct {
	*hub.Hub
	cluster *cluster.Adapter // nil on a single node
}

func (h apiHub) Stats() httpapi.Stats {
	st := h.Hub.Stats()
	return httpapi.Stats{Connections: st.Connections, Rooms: st.Rooms, Users: st.Users}
}

// pluginList is the plugin host's list in the HTTP API's terms.
type pluginList struct{ h *pluginhost.Host }

func (l pluginList) Plugins() []httpapi.PluginInfo {
	list := l.h.Plugins()
	out := make([]httpapi.PluginInfo, len(list))
	for i, p := range list {
		out[i] = httpapi.PluginInfo{Name: p.Name, Version: p.Version, SHA256: p.SHA256,
			Routes: httpapi.PluginRoutes{Events: p.Routes.Events, Messages: p.Routes.Messages, Actions: p.Routes.Actions},
			State:  p.State, Restarts: p.Restarts, PID: p.PID, Error: p.Error}
	}
	return out
}

// Hub returns the server's hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Handler routes the Socket.IO path to the protocol engine and everything else to the API.
func (s *Server) Handler() http.Handler {
	path := s.cfg.SocketIO.Path
	bare := strings.TrimSuffix(path, "/")
	api := s.api.Handler()
	if s.cfg.API.Listen != "" {
		api = s.healthOnly(api)
	}
	uiPath, ui := s.adminUI()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The client bundles sit under the Socket.IO path: they are routed first.
		if s.web.serve(w, r) {
			return
		}
		if strings.HasPrefix(r.URL.Path, path) || r.URL.Path == bare {
			s.io.ServeHTTP(w, r)
			return
		}
		if ui != nil && (strings.HasPrefix(r.URL.Path, uiPath) || r.URL.Path+"/" == uiPath) {
			ui.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// healthOnly keeps /health and the metrics path on the main listener when the API has its
// own; everything else there is the API's business.
func (s *Server) healthOnly(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" || (s.cfg.Metrics.Enabled && r.URL.Path == s.cfg.Metrics.Path) {
			api.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

// Start listens on the configured address(es) and returns once the server accepts
// connections; the plugins load in the background (see PluginsReady).
func (s *Server) Start(ctx context.Context) error {
	addr := net.JoinHostPort(s.cfg.Server.Host, strconv.Itoa(s.cfg.Server.Port))
	// No TCP keep-alive on the sockets' listener: a dead peer is found by the Engine.IO
	// heartbeat (pingInterval + pingTimeout) on sockets and by the HTTP idle timeout
	// elsewhere, both sooner than keep-alive probes would, and turning it on costs four
	// setsockopt calls per accepted connection. The separate API listener keeps Go's
	// default: few connections, and its server may have no idle timeout.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	var apiLn net.Listener
	if s.cfg.API.Listen != "" {
		if apiLn, err = net.Listen("tcp", s.cfg.API.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("listen %s: %w", s.cfg.API.Listen, err)
		}
	}
	return s.Serve(ctx, ln, apiLn)
}

// Serve is Start on listeners the caller made (tests use 127.0.0.1:0). apiLn may be nil.
func (s *Server) Serve(ctx context.Context, ln, apiLn net.Listener) error {
	closeAll := func() {
		ln.Close()
		if apiLn != nil {
			apiLn.Close()
		}
	}
	// The drop folder may not exist yet on a fresh checkout: an empty one is a valid start.
	if err := os.MkdirAll(s.cfg.Plugins.Dir, 0o755); err != nil {
		closeAll()
		return fmt.Errorf("plugins folder: %w", err)
	}
	// Returns at once: plugins load in the background, and a request for a route no
	// plugin has taken yet is answered PLUGIN_UNAVAILABLE until they are all loaded.
	if err := s.plugins.Start(ctx); err != nil {
		closeAll()
		return fmt.Errorf("plugins: %w", err)
	}
	// Subscribed before the first socket connects, so none misses another node's
	// broadcast. Redis unreachable is not fatal: the node serves its own sockets.
	if s.cluster != nil {
		if err := s.cluster.Start(ctx); err != nil {
			closeAll()
			_ = s.plugins.Close()
			return fmt.Errorf("cluster: %w", err)
		}
	}
	if s.shared != nil {
		s.shared.Start()
	}
	s.startAdmin(ctx)
	stopCluster := func() {
		s.closeAdmin()
		if s.cluster != nil {
			s.shared.Close()
			_ = s.cluster.Close()
		}
	}
	main := s.httpServer(ln, s.Handler(), "http")
	if !s.guard.callsOut() {
		// A websocket handshake then only counts in memory (the guard, the engine's
		// session table): its request runs on the poller, as its messages do.
		path := s.cfg.SocketIO.Path
		main.Inline = func(line []byte) bool { return engineio.WebsocketRequestLine(line, path) }
	}
	// Bodies the main listener takes: polling payloads and API requests. The parser holds
	// a body whole before its handler runs, so a larger one is refused as it is announced.
	main.MaxBodyBytes = max(s.cfg.SocketIO.MaxPayload, s.cfg.API.MaxBodyBytes)
	if err := main.Start(); err != nil {
		closeAll()
		_ = s.plugins.Close()
		stopCluster()
		return fmt.Errorf("serve: %w", err)
	}
	// The API's own listener runs on the same HTTP server, so both have the same header,
	// timeout and body limits and answer what they refuse alike.
	var apiSrv *engineio.HTTPServer
	if apiLn != nil {
		apiSrv = s.httpServer(apiLn, s.api.Handler(), "api-http")
		apiSrv.MaxBodyBytes = s.cfg.API.MaxBodyBytes
		if err := apiSrv.Start(); err != nil {
			_ = main.Shutdown(context.Background())
			closeAll()
			_ = s.plugins.Close()
			stopCluster()
			return fmt.Errorf("serve api: %w", err)
		}
	}
	s.mu.Lock()
	s.main, s.started = main, true
	s.apiSrv, s.apiLn = apiSrv, apiLn
	s.mu.Unlock()
	s.log.Info("listening", "addr", ln.Addr().String(), "socketio_path", s.cfg.SocketIO.Path,
		"environment", s.cfg.Environment, "version", Version)
	if apiLn != nil {
		s.log.Info("api listening", "addr", apiLn.Addr().String())
	}
	if s.cfg.DemoOn() {
		// A wildcard listener is reachable as localhost, which a browser can open.
		host := ln.Addr().String()
		if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
			host = net.JoinHostPort("localhost", strconv.Itoa(ta.Port))
		}
		s.log.Info("demo chat page (development only)", "url", "http://"+host+s.cfg.Demo.Path)
	}
	return nil
}

// PluginsReady is closed once the plugins found at start are loaded or refused.
func (s *Server) PluginsReady() <-chan struct{} { return s.plugins.Ready() }

// httpServer prepares an HTTP server for h on ln with the configured request limits.
func (s *Server) httpServer(ln net.Listener, h http.Handler, name string) *engineio.HTTPServer {
	hs := engineio.NewHTTPServer(ln, h)
	hs.Logger = s.log.Named(name)
	hs.MaxHeaderBytes = s.cfg.Server.MaxHeaderBytes
	hs.ReadHeaderTimeout = s.cfg.Server.ReadHeaderTimeout
	hs.IdleTimeout = s.cfg.Server.IdleTimeout
	hs.RefusalBody = httpapi.RefusalBody
	return hs
}

// Addr is the main listener's address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.main == nil {
		return nil
	}
	return s.main.Addr()
}

// APIAddr is the API listener's address when it has its own, else Addr.
func (s *Server) APIAddr() net.Addr {
	s.mu.Lock()
	ln := s.apiLn
	s.mu.Unlock()
	if ln != nil {
		return ln.Addr()
	}
	return s.Addr()
}

// Shutdown stops the server in order: the API stops taking requests and lets those in flight
// finish, every socket is told it is disconnected, the listener closes, then the plugins
// drain and stop.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	main, apiSrv, started := s.main, s.apiSrv, s.started
	s.started = false
	s.mu.Unlock()
	if !started {
		return nil
	}
	var errs []error
	if apiSrv != nil {
		if err := apiSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api: %w", err))
		}
	}
	if err := s.io.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("sockets: %w", err))
	}
	if err := main.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("listener: %w", err))
	}
	if err := s.plugins.Close(); err != nil {
		errs = append(errs, fmt.Errorf("plugins: %w", err))
	}
	s.closeAdmin()
	// Last: until the sockets are gone another node's broadcast may still be for them.
	if s.cluster != nil {
		s.shared.Close()
		if err := s.cluster.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
	}
	if s.recStore != nil {
		_ = s.recStore.Close()
	}
	return errors.Join(errs...)
}
