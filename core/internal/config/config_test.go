package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clearEnv makes the secrets' environment defaults deterministic.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"JWT_SECRET", "API_KEY", "PORT", "ENVIRONMENT", "REDIS_URL", "ADMIN_PASSWORD"} {
		t.Setenv(k, "")
	}
}

func TestDefaultsFromEmptyFile(t *testing.T) {
	clearEnv(t)
	c, err := Parse(nil, "empty.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	// Compare only the exported settings.
	got := *c
	got.filename, got.ranges, got.files = "", nil, nil
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("defaults differ:\n got %+v\nwant %+v", got, *want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"environment", c.Environment, "development"},
		{"server.host", c.Server.Host, "0.0.0.0"},
		{"server.port", c.Server.Port, 3000},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout, 10 * time.Second},
		{"server.trusted_proxies", len(c.Server.TrustedProxies), 0},
		{"server.max_header_bytes", c.Server.MaxHeaderBytes, 16384},
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout, 10 * time.Second},
		{"server.idle_timeout", c.Server.IdleTimeout, 120 * time.Second},
		{"socketio.path", c.SocketIO.Path, "/socket.io/"},
		{"socketio.transports", c.SocketIO.Transports, []string{"polling", "websocket"}},
		{"socketio.ping_interval", c.SocketIO.PingInterval, 25 * time.Second},
		{"socketio.ping_timeout", c.SocketIO.PingTimeout, 20 * time.Second},
		{"socketio.max_payload", c.SocketIO.MaxPayload, 1000000},
		{"socketio.connect_timeout", c.SocketIO.ConnectTimeout, 45 * time.Second},
		{"socketio.cors_origins", c.SocketIO.CORSOrigins, []string{"*"}},
		{"socketio.max_outbound_bytes", c.SocketIO.MaxOutboundBytes, 1048576},
		{"socketio.max_event_name_length", c.SocketIO.MaxEventNameLength, 128},
		{"socketio.max_room_name_length", c.SocketIO.MaxRoomNameLength, 128},
		{"socketio.max_rooms_per_socket", c.SocketIO.MaxRoomsPerSocket, 50},
		{"socketio.max_json_depth", c.SocketIO.MaxJSONDepth, 32},
		{"socketio.max_connections", c.SocketIO.MaxConnections, 20000},
		{"socketio.max_connections_per_ip", c.SocketIO.MaxConnectionsPerIP, 1000},
		{"socketio.max_connect_payload", c.SocketIO.MaxConnectPayload, 16384},
		{"auth.jwt_secret", c.Auth.JWTSecret, ""},
		{"auth.algorithms", c.Auth.Algorithms, []string{"HS256"}},
		{"auth.public_key_file", c.Auth.PublicKeyFile, ""},
		{"auth.issuer", c.Auth.Issuer, ""},
		{"auth.audience", c.Auth.Audience, ""},
		{"auth.leeway", c.Auth.Leeway, 30 * time.Second},
		{"auth.disconnect_on_expiry", c.Auth.DisconnectOnExpiry, false},
		{"api.listen", c.API.Listen, ""},
		{"api.max_body_bytes", c.API.MaxBodyBytes, 1048576},
		{"api.key", c.API.Keys, []APIKey{{Name: "default", Secret: "", Scopes: []string{"*"}}}},
		{"api.signing.required", c.API.Signing.Required, false},
		{"api.signing.required_routes", len(c.API.Signing.RequiredRoutes), 0},
		{"api.signing.window", c.API.Signing.Window, 300 * time.Second},
		{"api.signing.min_version", c.API.Signing.MinVersion, "v1"},
		{"rate_limit.enabled", c.RateLimit.Enabled, true},
		{"rate_limit.ws_connections_per_minute", c.RateLimit.WSConnectionsPerMinute, 100},
		{"rate_limit.ws_messages_per_minute", c.RateLimit.WSMessagesPerMinute, 1000},
		{"rate_limit.http_requests_per_minute", c.RateLimit.HTTPRequestsPerMinute, 100},
		{"rate_limit.http_failed_auth_per_minute", c.RateLimit.HTTPFailedAuthPerMinute, 20},
		{"rate_limit.max_keys", c.RateLimit.MaxKeys, 100000},
		{"plugins.dir", c.Plugins.Dir, "plugins"},
		{"plugins.default_timeout", c.Plugins.DefaultTimeout, 5 * time.Second},
		{"plugins.max_in_flight", c.Plugins.MaxInFlight, 256},
		{"plugins.drain_timeout", c.Plugins.DrainTimeout, 30 * time.Second},
		{"plugin", len(c.Plugin), 0},
		{"recovery.enabled", c.Recovery.Enabled, true},
		{"recovery.max_disconnection_duration", c.Recovery.MaxDisconnectionDuration, 2 * time.Minute},
		{"recovery.max_packets_per_session", c.Recovery.MaxPacketsPerSession, 1000},
		{"recovery.max_packets_total", c.Recovery.MaxPacketsTotal, 100000},
		{"metrics.enabled", c.Metrics.Enabled, true},
		{"metrics.path", c.Metrics.Path, "/metrics"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

// TestEmptyBlocksKeepDefaults: a block that is written but empty changes nothing.
func TestEmptyBlocksKeepDefaults(t *testing.T) {
	clearEnv(t)
	src := `
server {}
socketio {}
auth {}
api {
  signing {}
}
rate_limit {}
plugins {}
recovery {}
cluster {}
metrics {}
log {}
`
	c, err := Parse([]byte(src), "blocks.hcl")
	if err != nil {
		t.Fatal(err)
	}
	got := *c
	got.filename, got.ranges, got.files = "", nil, nil
	if want := Default(); !reflect.DeepEqual(&got, want) {
		t.Fatalf("empty blocks changed defaults:\n got %+v\nwant %+v", got, *want)
	}
}

func TestRepositoryConfigParses(t *testing.T) {
	clearEnv(t)
	c, err := Load("../../../config.hcl")
	if err != nil {
		t.Fatal(err)
	}
	got := *c
	got.filename, got.ranges, got.files = "", nil, nil
	// config.hcl writes every default out, so it must mean exactly the defaults.
	if want := Default(); !reflect.DeepEqual(&got, want) {
		t.Fatalf("config.hcl differs from the defaults:\n got %+v\nwant %+v", got, *want)
	}
}

func TestRepositoryConfigReadsEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("PORT", "4123")
	t.Setenv("ENVIRONMENT", "production")
	t.Setenv("JWT_SECRET", "jwt-secret")
	t.Setenv("API_KEY", "api-key")
	c, err := Load("../../../config.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 4123 || c.Environment != "production" ||
		c.Auth.JWTSecret != "jwt-secret" || c.API.Keys[0].Secret != "api-key" {
		t.Fatalf("environment not applied: %+v", c)
	}

	// Production without secrets is refused, naming both settings and their lines.
	t.Setenv("JWT_SECRET", "")
	t.Setenv("API_KEY", "")
	_, err = Load("../../../config.hcl")
	if err == nil {
		t.Fatal("production without secrets was accepted")
	}
	for _, want := range []string{"auth.jwt_secret", "api.key.default.secret", "config.hcl:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// TestClusterFromEnvironment: config.hcl takes the cluster's Redis from $REDIS_URL, and
// without it the node stays alone.
func TestClusterFromEnvironment(t *testing.T) {
	clearEnv(t)
	c, err := Load("../../../config.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.Enabled() || c.Cluster.KeyPrefix != "socket.io" {
		t.Fatalf("cluster without REDIS_URL: %+v", c.Cluster)
	}
	t.Setenv("REDIS_URL", "redis://127.0.0.1:6379/2")
	if c, err = Load("../../../config.hcl"); err != nil {
		t.Fatal(err)
	}
	if !c.Cluster.Enabled() || c.Cluster.RedisURL != "redis://127.0.0.1:6379/2" {
		t.Fatalf("cluster with REDIS_URL: %+v", c.Cluster)
	}
}

// TestRedisURLErrorHidesPassword: a bad URL is reported without the password it holds.
func TestRedisURLErrorHidesPassword(t *testing.T) {
	clearEnv(t)
	_, err := Parse([]byte("cluster {\n  redis_url = \"redis://u:hunter2@h:notaport\"\n}\n"), "f.hcl")
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestEnvFunction(t *testing.T) {
	clearEnv(t)
	t.Setenv("RT_TEST_HOST", "127.0.0.1")
	src := `
server {
  host = env("RT_TEST_HOST")
  port = env("RT_TEST_PORT_UNSET", "4000")
}
log {
  level = "${env("RT_TEST_UNSET")}info"
}
`
	c, err := Parse([]byte(src), "env.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Host != "127.0.0.1" {
		t.Errorf("env without default: host = %q", c.Server.Host)
	}
	if c.Server.Port != 4000 {
		t.Errorf("env with default (string to number): port = %d", c.Server.Port)
	}
	if c.Log.Level != "info" {
		t.Errorf("unset env without default is not empty: level = %q", c.Log.Level)
	}

	t.Setenv("RT_TEST_PORT_UNSET", "4001")
	c, err = Parse([]byte(src), "env.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 4001 {
		t.Errorf("env with default, set: port = %d", c.Server.Port)
	}
}

func TestSecretsDefaultToEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("JWT_SECRET", "j")
	t.Setenv("API_KEY", "k")
	c, err := Parse([]byte(`environment = "production"`), "prod.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.JWTSecret != "j" || c.API.Keys[0].Secret != "k" {
		t.Fatalf("secrets = %q %q", c.Auth.JWTSecret, c.API.Keys[0].Secret)
	}
}

func TestFullFile(t *testing.T) {
	clearEnv(t)
	src := `
environment = "staging"
server {
  host = "127.0.0.1"
  port = 8080
  shutdown_timeout = "3s"
  trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]
}
auth {
  jwt_secret = "s3cret"
  algorithms = ["HS256", "HS512"]
  issuer = "me"
  audience = "you"
  leeway = "1m"
  disconnect_on_expiry = true
}
api {
  listen = "127.0.0.1:9090"
  key "ops" {
    secret = "k1"
  }
  key "pusher" {
    secret = "k2"
    scopes = ["push", "room"]
  }
  signing {
    required_routes = ["/api/broadcast"]
    window = "60s"
    min_version = "v2"
  }
}
rate_limit {
  enabled = false
  ws_messages_per_minute = 0
}
plugins {
  default_timeout = "7s"
  max_in_flight = 9
}
plugin "echo" {
  events = ["*"]
  messages = []
  timeout = "2s"
  sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  config = { greeting = "hi", n = 3, nested = { list = [1, "a"] } }
}
plugin "chat" {
  actions = ["send"]
}
log {
  level = "debug"
  format = "json"
}
`
	c, err := Parse([]byte(src), "full.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Environment != "staging" || c.Server.Port != 8080 || c.Server.ShutdownTimeout != 3*time.Second {
		t.Errorf("server: %+v", c.Server)
	}
	if p := c.Server.TrustedProxyPrefixes(); len(p) != 2 || p[1].String() != "192.168.1.1/32" {
		t.Errorf("trusted proxies: %v", p)
	}
	if c.Auth.Leeway != time.Minute || !c.Auth.DisconnectOnExpiry || c.Auth.Issuer != "me" {
		t.Errorf("auth: %+v", c.Auth)
	}
	if len(c.API.Keys) != 2 || c.API.Keys[0].Name != "ops" || !reflect.DeepEqual(c.API.Keys[0].Scopes, []string{ScopeAll}) {
		t.Errorf("keys: %+v", c.API.Keys)
	}
	if k := c.API.Keys[1]; !reflect.DeepEqual(k.Scopes, []string{"push", "room"}) {
		t.Errorf("scopes: %+v", k)
	}
	if s := c.API.Signing; s.Required || !reflect.DeepEqual(s.RequiredRoutes, []string{"/api/broadcast"}) || s.Window != time.Minute || s.MinVersion != "v2" {
		t.Errorf("signing: %+v", s)
	}
	if c.RateLimit.Enabled || c.RateLimit.WSMessagesPerMinute != 0 || c.RateLimit.WSConnectionsPerMinute != 100 {
		t.Errorf("rate limit: %+v", c.RateLimit)
	}
	if len(c.Plugin) != 2 || c.Plugin[0].Name != "echo" || c.Plugin[1].Name != "chat" {
		t.Fatalf("plugins: %+v", c.Plugin)
	}
	echo, chat := c.Plugin[0], c.Plugin[1]
	if echo.Timeout != 2*time.Second || echo.MaxInFlight != 9 ||
		!reflect.DeepEqual(echo.Events, []string{"*"}) || echo.Messages == nil || len(echo.Messages) != 0 || echo.Actions != nil {
		t.Errorf("echo: %+v", echo)
	}
	var cfg map[string]any
	if err := json.Unmarshal(echo.Config, &cfg); err != nil {
		t.Fatalf("config JSON %s: %v", echo.Config, err)
	}
	if cfg["greeting"] != "hi" || cfg["n"] != 3.0 || !reflect.DeepEqual(cfg["nested"], map[string]any{"list": []any{1.0, "a"}}) {
		t.Errorf("config = %s", echo.Config)
	}
	if chat.Timeout != 7*time.Second || chat.Config != nil || chat.Events != nil {
		t.Errorf("chat: %+v", chat)
	}
	if c.Log.Level != "debug" || c.Log.Format != "json" {
		t.Errorf("log: %+v", c.Log)
	}
}

// TestMistakes: each kind of mistake fails with the file name and the line of the mistake.
func TestMistakes(t *testing.T) {
	cases := []struct {
		name string
		src  string
		line int
		want string // also in the error text
	}{
		{"unknown key", "server {\n  prot = 3000\n}\n", 2, `"prot"`},
		{"unknown block", "\nserverr {\n}\n", 2, "serverr"},
		{"wrong type", "server {\n  host = \"h\"\n  port = \"abc\"\n}\n", 3, "number is required"},
		{"wrong type list", "socketio {\n\n  transports = \"polling\"\n}\n", 3, "list of string required"},
		{"fractional number", "socketio {\n  max_payload = 1.5\n}\n", 2, "whole number"},
		{"bad duration", "server {\n  shutdown_timeout = \"10 seconds\"\n}\n", 2, "duration"},
		{"bad duration unitless", "auth {\n  leeway = \"30\"\n}\n", 2, "leeway"},
		{"negative duration", "socketio {\n  ping_interval = \"-1s\"\n}\n", 2, "ping_interval"},
		{"bad algorithm", "auth {\n  algorithms = [\"HS256\", \"none\"]\n}\n", 2, `"none"`},
		{"missing secret in production", "environment = \"production\"\nauth {\n  jwt_secret = \"\"\n}\napi {\n  key \"default\" {\n    secret = \"x\"\n  }\n}\n", 3, "auth.jwt_secret"},
		{"missing api key secret in production", "environment = \"production\"\nauth {\n  jwt_secret = \"j\"\n}\napi {\n  key \"main\" {\n  }\n}\n", 6, "api.key.main.secret"},
		{"missing secret, no auth block", "\nenvironment = \"production\"\napi {\n  key \"default\" {\n    secret = \"x\"\n  }\n}\n", 2, "auth.jwt_secret"},
		{"port out of range", "server {\n  port = 70000\n}\n", 2, "70000"},
		{"negative size", "socketio {\n\n\n  max_payload = -1\n}\n", 4, "max_payload"},
		{"empty environment", "\n\nenvironment = \"\"\n", 3, "environment"},
		{"unknown scope", "api {\n  key \"k\" {\n    scopes = [\"push\", \"delete\"]\n  }\n}\n", 3, `"delete"`},
		{"unknown transport", "socketio {\n  transports = [\"carrier-pigeon\"]\n}\n", 2, "carrier-pigeon"},
		{"bad min_version", "api {\n  signing {\n    min_version = \"v3\"\n  }\n}\n", 3, "v3"},
		{"bad trusted proxy", "server {\n  trusted_proxies = [\"10.0.0.0/33\"]\n}\n", 2, "10.0.0.0/33"},
		{"bad listen", "api {\n  listen = \"nope\"\n}\n", 2, "nope"},
		{"bad log level", "log {\n  level = \"loud\"\n}\n", 2, "loud"},
		{"bad log format", "log {\n  format = \"xml\"\n}\n", 2, "xml"},
		{"public key missing", "auth {\n  algorithms = [\"RS256\"]\n}\n", 2, "public_key_file"},
		{"duplicate block", "server {\n}\nserver {\n}\n", 3, "Duplicate server block"},
		{"duplicate plugin", "plugin \"a\" {\n}\nplugin \"a\" {\n}\n", 1, "twice"},
		{"bad plugin sha256", "plugin \"a\" {\n  sha256 = \"abc\"\n}\n", 2, "sha256"},
		{"plugin config not object", "plugin \"a\" {\n  config = \"x\"\n}\n", 2, "object"},
		{"unknown function", "server {\n  host = envv(\"X\")\n}\n", 2, "envv"},
		{"env too many args", "server {\n  host = env(\"A\", \"B\", \"C\")\n}\n", 2, "env"},
		{"syntax error", "server {\n  port = = 3\n}\n", 2, ""},
		{"negative rate", "rate_limit {\n  ws_messages_per_minute = -5\n}\n", 2, "ws_messages_per_minute"},
		{"api key secret too long", "api {\n  key \"k\" {\n    secret = \"" + strings.Repeat("s", MaxAPIKeyLength+1) + "\"\n  }\n}\n", 3, "api.key.k.secret"},
		{"tiny header cap", "server {\n  max_header_bytes = 100\n}\n", 2, "max_header_bytes"},
		{"idle timeout under ping interval", "server {\n\n  idle_timeout = \"20s\"\n}\nsocketio {\n  ping_interval = \"25s\"\n}\n", 3, "idle_timeout"},
		{"bad redis url", "cluster {\n\n  redis_url = \"http://u:hunter2@h:1\"\n}\n", 3, "cluster.redis_url"},
		{"empty key prefix", "cluster {\n  key_prefix = \"\"\n}\n", 2, "key_prefix"},
		{"pattern in key prefix", "cluster {\n  key_prefix = \"a*b\"\n}\n", 2, "key_prefix"},
		{"zero cluster connect timeout", "cluster {\n  connect_timeout = \"0s\"\n}\n", 2, "connect_timeout"},
		{"short node ttl", "cluster {\n\n  node_ttl = \"1s\"\n}\n", 3, "cluster.node_ttl"},
		{"zero connect payload", "socketio {\n  max_connect_payload = 0\n}\n", 2, "max_connect_payload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "file.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *config.Error: %v", err, err)
			}
			msg := err.Error()
			loc := "file.hcl:" + strconv.Itoa(tc.line) + ","
			if !strings.Contains(msg, loc) {
				t.Errorf("error does not mention %s:\n%s", loc, msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error does not mention %q:\n%s", tc.want, msg)
			}
			if p := ce.Pretty(0, false); !strings.Contains(p, "file.hcl line "+strconv.Itoa(tc.line)) {
				t.Errorf("pretty output lacks the line:\n%s", p)
			}
		})
	}
}

func TestDevelopmentAllowsMissingSecrets(t *testing.T) {
	clearEnv(t)
	c, err := Parse([]byte(`api {
  key "a" {}
  key "b" {
    secret = "given"
  }
}`), "dev.hcl")
	if err != nil {
		t.Fatal(err)
	}
	filled := c.GenerateMissingSecrets()
	if !reflect.DeepEqual(filled, []string{"auth.jwt_secret", "api.key.a.secret", "admin.password"}) {
		t.Fatalf("filled = %v", filled)
	}
	if len(c.Auth.JWTSecret) != 64 || len(c.API.Keys[0].Secret) != 64 || c.API.Keys[1].Secret != "given" {
		t.Fatalf("secrets = %q %+v", c.Auth.JWTSecret, c.API.Keys)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	c.Environment = "production"
	if got := c.GenerateMissingSecrets(); got != nil {
		t.Fatalf("generated outside development: %v", got)
	}
}

func TestGenerateSecret(t *testing.T) {
	a, b := GenerateSecret(), GenerateSecret()
	if len(a) != 64 || a == b {
		t.Fatalf("secrets %q %q", a, b)
	}
}

// TestValidateInCode: a Config built in code is validated without a file.
func TestValidateInCode(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Environment = "production"
	c.Server.Port = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"server.port", "auth.jwt_secret", "api.key.default.secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "<nil>") {
		t.Errorf("error text: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.hcl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
