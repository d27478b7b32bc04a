package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/rtserver/rtserver/core/internal/clientip"
)

// Validate checks every setting and returns an *Error listing all problems, each pointing
// at its line when the Config came from a file. Outside development a missing secret is an
// error naming the setting; in development the server generates it (GenerateMissingSecrets).
func (c *Config) Validate() error {
	v := &validator{c: c}
	dev := c.IsDevelopment()

	if strings.TrimSpace(c.Environment) == "" {
		v.fail("environment", "environment must not be empty (e.g. \"development\" or \"production\").")
	}

	s := c.Server
	v.port("server.port", s.Port)
	v.positive("server.shutdown_timeout", s.ShutdownTimeout)
	v.size("server.max_header_bytes", s.MaxHeaderBytes)
	if s.MaxHeaderBytes > 0 && s.MaxHeaderBytes < 1024 {
		v.fail("server.max_header_bytes", "max_header_bytes must be at least 1024: browsers send several hundred bytes of headers.")
	}
	v.positive("server.read_header_timeout", s.ReadHeaderTimeout)
	v.positive("server.idle_timeout", s.IdleTimeout)
	if s.IdleTimeout > 0 && s.IdleTimeout <= c.SocketIO.PingInterval {
		v.failAt("server.idle_timeout", []string{"socketio.ping_interval"}, "idle_timeout (%s) must be longer than socketio.ping_interval (%s): a long-polling request waits up to ping_interval for data.", s.IdleTimeout, c.SocketIO.PingInterval)
	}
	for _, p := range s.TrustedProxies {
		if _, err := clientip.ParsePrefix(p); err != nil {
			v.fail("server.trusted_proxies", "trusted_proxies entry %q is neither an IP address nor a CIDR.", p)
		}
	}

	io := c.SocketIO
	if !strings.HasPrefix(io.Path, "/") {
		v.fail("socketio.path", "path %q must start with \"/\".", io.Path)
	}
	if len(io.Transports) == 0 {
		v.fail("socketio.transports", "transports must list \"polling\", \"websocket\" or both.")
	}
	v.oneOf("socketio.transports", "transport", io.Transports, []string{"polling", "websocket"})
	v.positive("socketio.ping_interval", io.PingInterval)
	v.positive("socketio.ping_timeout", io.PingTimeout)
	v.positive("socketio.connect_timeout", io.ConnectTimeout)
	v.size("socketio.max_payload", io.MaxPayload)
	for _, o := range io.CORSOrigins {
		if strings.TrimSpace(o) == "" {
			v.fail("socketio.cors_origins", "cors_origins entries must not be empty; use \"*\" for any origin.")
		}
	}
	v.size("socketio.max_outbound_bytes", io.MaxOutboundBytes)
	v.size("socketio.max_event_name_length", io.MaxEventNameLength)
	v.size("socketio.max_room_name_length", io.MaxRoomNameLength)
	v.size("socketio.max_rooms_per_socket", io.MaxRoomsPerSocket)
	v.size("socketio.max_json_depth", io.MaxJSONDepth)
	v.size("socketio.max_connections", io.MaxConnections)
	v.size("socketio.max_connections_per_ip", io.MaxConnectionsPerIP)
	v.size("socketio.max_connect_payload", io.MaxConnectPayload)

	a := c.Auth
	if len(a.Algorithms) == 0 {
		v.fail("auth.algorithms", "algorithms must list at least one of %s.", strings.Join(Algorithms, ", "))
	}
	v.oneOf("auth.algorithms", "algorithm", a.Algorithms, Algorithms)
	if a.UsesHMAC() && a.JWTSecret == "" && !dev {
		v.failAt("auth.jwt_secret", []string{"auth", "environment"}, "auth.jwt_secret is required in environment %q (set JWT_SECRET); only development generates one.", c.Environment)
	}
	if a.UsesPublicKey() && a.PublicKeyFile == "" {
		v.failAt("auth.public_key_file", []string{"auth.algorithms"}, "auth.public_key_file (a PEM public key) is required for algorithms %s.", strings.Join(a.Algorithms, ", "))
	}
	if slices.Contains(a.Algorithms, "RS256") && slices.Contains(a.Algorithms, "ES256") {
		v.fail("auth.algorithms", "RS256 and ES256 cannot both be allowed: public_key_file holds one key, RSA or EC.")
	}
	if a.Leeway < 0 {
		v.fail("auth.leeway", "leeway must not be negative.")
	}

	api := c.API
	if api.Listen != "" {
		_, port, err := net.SplitHostPort(api.Listen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			v.fail("api.listen", "listen %q must be \"host:port\" (or \"\" to share the Socket.IO listener).", api.Listen)
		}
	}
	v.size("api.max_body_bytes", api.MaxBodyBytes)
	if len(api.Keys) == 0 {
		v.fail("api", "at least one api key block is required.")
	}
	names := map[string]bool{}
	secrets := map[string]string{}
	for _, k := range api.Keys {
		at := "api.key." + k.Name
		if strings.TrimSpace(k.Name) == "" {
			v.fail(at, "an api key needs a name: key \"name\" { ... }.")
		}
		if names[k.Name] {
			v.fail(at, "api key %q is defined twice.", k.Name)
		}
		names[k.Name] = true
		switch {
		case k.Secret == "" && !dev:
			v.failAt(at+".secret", []string{at, "api", "environment"}, "api.key.%s.secret is required in environment %q (set API_KEY); only development generates one.", k.Name, c.Environment)
		case len(k.Secret) > MaxAPIKeyLength:
			v.fail(at+".secret", "api.key.%s.secret is longer than %d bytes.", k.Name, MaxAPIKeyLength)
		case k.Secret != "" && secrets[k.Secret] != "":
			v.fail(at+".secret", "api keys %q and %q have the same secret.", secrets[k.Secret], k.Name)
		case k.Secret != "":
			secrets[k.Secret] = k.Name
		}
		if len(k.Scopes) == 0 {
			v.fail(at+".scopes", "api key %q needs at least one scope: %s or \"*\".", k.Name, strings.Join(Scopes, ", "))
		}
		v.oneOf(at+".scopes", "scope", k.Scopes, append(slices.Clone(Scopes), ScopeAll))
	}
	sg := api.Signing
	for _, r := range sg.RequiredRoutes {
		if !strings.HasPrefix(r, "/") {
			v.fail("api.signing.required_routes", "required_routes entry %q must be a path starting with \"/\".", r)
		}
	}
	v.positive("api.signing.window", sg.Window)
	v.oneOf("api.signing.min_version", "min_version", []string{sg.MinVersion}, []string{"v1", "v2"})

	rl := c.RateLimit
	v.nonNegative("rate_limit.ws_connections_per_minute", rl.WSConnectionsPerMinute)
	v.nonNegative("rate_limit.ws_messages_per_minute", rl.WSMessagesPerMinute)
	v.nonNegative("rate_limit.http_requests_per_minute", rl.HTTPRequestsPerMinute)
	v.nonNegative("rate_limit.http_failed_auth_per_minute", rl.HTTPFailedAuthPerMinute)
	v.size("rate_limit.max_keys", rl.MaxKeys)

	pl := c.Plugins
	if strings.TrimSpace(pl.Dir) == "" {
		v.fail("plugins.dir", "dir must name the folder plugins are dropped into.")
	}
	v.positive("plugins.default_timeout", pl.DefaultTimeout)
	v.size("plugins.max_in_flight", pl.MaxInFlight)
	v.positive("plugins.drain_timeout", pl.DrainTimeout)
	seen := map[string]bool{}
	for _, p := range c.Plugin {
		at := "plugin." + p.Name
		if !validPluginName(p.Name) {
			v.fail(at, "plugin name %q must be letters, digits, '-', '_' or '.', as the binary is named.", p.Name)
		}
		if seen[p.Name] {
			v.fail(at, "plugin %q is configured twice.", p.Name)
		}
		seen[p.Name] = true
		for i, list := range [][]string{p.Events, p.Messages, p.Actions} {
			field := [...]string{"events", "messages", "actions"}[i]
			for _, e := range list {
				if strings.TrimSpace(e) == "" {
					v.fail(at+"."+field, "%s entries must not be empty; \"*\" means all.", field)
				}
			}
		}
		v.positive(at+".timeout", p.Timeout)
		v.size(at+".max_in_flight", p.MaxInFlight)
		if p.SHA256 != "" {
			if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 {
				v.fail(at+".sha256", "sha256 must be 64 hex digits.")
			}
		}
	}

	r := c.Recovery
	v.positive("recovery.max_disconnection_duration", r.MaxDisconnectionDuration)
	v.size("recovery.max_packets_per_session", r.MaxPacketsPerSession)
	v.size("recovery.max_packets_total", r.MaxPacketsTotal)
	v.size("recovery.max_bytes_total", r.MaxBytesTotal)

	cl := c.Cluster
	v.validateRedis(cl)
	if cl.KeyPrefix == "" || strings.ContainsAny(cl.KeyPrefix, "#*?[]") {
		v.fail("cluster.key_prefix", "key_prefix %q must be non-empty and hold none of # * ? [ ]: it starts every channel name and is matched as a pattern.", cl.KeyPrefix)
	}
	v.positive("cluster.connect_timeout", cl.ConnectTimeout)
	v.positive("cluster.request_timeout", cl.RequestTimeout)
	if cl.NodeTTL < 3*time.Second {
		v.fail("cluster.node_ttl", "node_ttl %s is too short: heartbeats run every third of it; write \"3s\" or more (default \"15s\").", cl.NodeTTL)
	}

	if io.ServeClient && strings.TrimSpace(io.ClientDir) == "" {
		v.fail("socketio.client_dir", "client_dir must name the folder of the socket.io-client bundles when serve_client is true.")
	}
	if dm := c.Demo; dm.Enabled {
		if !strings.HasPrefix(dm.Path, "/") || !strings.HasSuffix(dm.Path, "/") {
			v.fail("demo.path", "path %q must start and end with \"/\".", dm.Path)
		}
		if strings.HasPrefix(dm.Path, io.Path) {
			v.failAt("demo.path", []string{"socketio.path"}, "path %q is inside socketio.path %q.", dm.Path, io.Path)
		}
		if strings.TrimSpace(dm.Dir) == "" {
			v.fail("demo.dir", "dir must name the folder of the demo page.")
		}
		v.positive("demo.token_ttl", dm.TokenTTL)
		if dm.TokenTTL > time.Hour {
			v.fail("demo.token_ttl", "token_ttl %s is over the 1h a development token may live.", dm.TokenTTL)
		}
		v.size("demo.tokens_per_minute", dm.TokensPerMinute)
	}
	if !strings.HasPrefix(c.Metrics.Path, "/") {
		v.fail("metrics.path", "path %q must start with \"/\".", c.Metrics.Path)
	}

	if hclog.LevelFromString(c.Log.Level) == hclog.NoLevel {
		v.fail("log.level", "level %q must be one of trace, debug, info, warn, error, off.", c.Log.Level)
	}
	v.oneOf("log.format", "format", []string{c.Log.Format}, []string{"text", "json"})
	v.admin()

	if len(v.diags) == 0 {
		return nil
	}
	return newError(v.diags, c.files)
}

type validator struct {
	c     *Config
	diags hcl.Diagnostics
}

func (v *validator) fail(path, format string, args ...any) {
	v.failAt(path, nil, format, args...)
}

func (v *validator) failAt(path string, fallbacks []string, format string, args ...any) {
	v.diags = append(v.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid " + path,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  v.c.rangeOf(path, fallbacks...),
	})
}

func (v *validator) port(path string, n int) {
	if n < 0 || n > 65535 {
		v.fail(path, "%s = %d is not a port (0..65535).", lastPart(path), n)
	}
}

func (v *validator) size(path string, n int) {
	if n <= 0 {
		v.fail(path, "%s = %d must be positive.", lastPart(path), n)
	}
}

func (v *validator) nonNegative(path string, n int) {
	if n < 0 {
		v.fail(path, "%s = %d must not be negative (0 turns it off).", lastPart(path), n)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.fail(path, "%s = %q must be a positive duration.", lastPart(path), d.String())
	}
}

func (v *validator) oneOf(path, what string, got, known []string) {
	for _, g := range got {
		if !slices.Contains(known, g) {
			v.fail(path, "unknown %s %q; known: %s.", what, g, strings.Join(known, ", "))
		}
	}
}

func validPluginName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
