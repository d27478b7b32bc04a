package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Load reads, parses and validates the HCL file at path. A bad file yields an *Error whose
// text names the file and line of each problem.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(src, path)
}

// Parse parses and validates HCL source; filename is used in diagnostics only.
//
// In order: the source is parsed, expressions are evaluated (env() is the one function),
// settings that are written replace the defaults, secrets that are not written come from
// $JWT_SECRET and $API_KEY, durations are parsed, and finally Validate runs.
func Parse(src []byte, filename string) (*Config, error) {
	p := hclparse.NewParser()
	file, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, newError(diags, p.Files())
	}

	var raw rawFile
	diags = append(diags, gohcl.DecodeBody(file.Body, evalContext(), &raw)...)
	if diags.HasErrors() {
		return nil, newError(diags, p.Files())
	}

	c := Default()
	c.filename = filename
	c.files = p.Files()
	c.ranges = collectRanges(file.Body)
	d := &decoder{c: c}
	d.apply(&raw)
	// Validate even after a bad duration (which kept its default) so that one run reports
	// every problem in the file.
	diags = d.diags
	var verr *Error
	if err := c.Validate(); errors.As(err, &verr) {
		diags = append(diags, verr.Diagnostics...)
	}
	if diags.HasErrors() {
		return nil, newError(diags, c.files)
	}
	return c, nil
}

// evalContext offers env("NAME") and env("NAME", "default") to the file.
func evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": envFunc}}
}

var envFunc = function.New(&function.Spec{
	Description: "The value of an environment variable, or the default (or \"\") when unset or empty.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	VarParam:    &function.Parameter{Name: "default", Type: cty.String},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if len(args) > 2 {
			return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default")
		}
		if v := os.Getenv(args[0].AsString()); v != "" {
			return cty.StringVal(v), nil
		}
		if len(args) == 2 {
			return args[1], nil
		}
		return cty.StringVal(""), nil
	},
})

// The raw* types mirror the file. Every attribute is a pointer so that "not written" (nil)
// keeps the default; durations are strings until parsed with their line at hand.
type rawFile struct {
	Environment *string       `hcl:"environment,optional"`
	Server      *rawServer    `hcl:"server,block"`
	SocketIO    *rawSocketIO  `hcl:"socketio,block"`
	Auth        *rawAuth      `hcl:"auth,block"`
	API         *rawAPI       `hcl:"api,block"`
	RateLimit   *rawRateLimit `hcl:"rate_limit,block"`
	Plugins     *rawPlugins   `hcl:"plugins,block"`
	Plugin      []rawPlugin   `hcl:"plugin,block"`
	Recovery    *rawRecovery  `hcl:"recovery,block"`
	Cluster     *rawCluster   `hcl:"cluster,block"`
	Metrics     *rawMetrics   `hcl:"metrics,block"`
	Log         *rawLog       `hcl:"log,block"`
	Demo        *rawDemo      `hcl:"demo,block"`
	Admin       *rawAdmin     `hcl:"admin,block"`
}

type rawServer struct {
	Host              *string   `hcl:"host,optional"`
	Port              *int      `hcl:"port,optional"`
	ShutdownTimeout   *string   `hcl:"shutdown_timeout,optional"`
	TrustedProxies    *[]string `hcl:"trusted_proxies,optional"`
	MaxHeaderBytes    *int      `hcl:"max_header_bytes,optional"`
	ReadHeaderTimeout *string   `hcl:"read_header_timeout,optional"`
	IdleTimeout       *string   `hcl:"idle_timeout,optional"`
}

type rawSocketIO struct {
	Path                *string   `hcl:"path,optional"`
	Transports          *[]string `hcl:"transports,optional"`
	PingInterval        *string   `hcl:"ping_interval,optional"`
	PingTimeout         *string   `hcl:"ping_timeout,optional"`
	MaxPayload          *int      `hcl:"max_payload,optional"`
	ConnectTimeout      *string   `hcl:"connect_timeout,optional"`
	CORSOrigins         *[]string `hcl:"cors_origins,optional"`
	MaxOutboundBytes    *int      `hcl:"max_outbound_bytes,optional"`
	MaxEventNameLength  *int      `hcl:"max_event_name_length,optional"`
	MaxRoomNameLength   *int      `hcl:"max_room_name_length,optional"`
	MaxRoomsPerSocket   *int      `hcl:"max_rooms_per_socket,optional"`
	MaxJSONDepth        *int      `hcl:"max_json_depth,optional"`
	MaxConnections      *int      `hcl:"max_connections,optional"`
	MaxConnectionsPerIP *int      `hcl:"max_connections_per_ip,optional"`
	MaxConnectPayload   *int      `hcl:"max_connect_payload,optional"`
	ServeClient         *bool     `hcl:"serve_client,optional"`
	ClientDir           *string   `hcl:"client_dir,optional"`
}

type rawAuth struct {
	JWTSecret          *string   `hcl:"jwt_secret,optional"`
	Algorithms         *[]string `hcl:"algorithms,optional"`
	PublicKeyFile      *string   `hcl:"public_key_file,optional"`
	Issuer             *string   `hcl:"issuer,optional"`
	Audience           *string   `hcl:"audience,optional"`
	Leeway             *string   `hcl:"leeway,optional"`
	DisconnectOnExpiry *bool     `hcl:"disconnect_on_expiry,optional"`
}

type rawAPI struct {
	Listen       *string     `hcl:"listen,optional"`
	MaxBodyBytes *int        `hcl:"max_body_bytes,optional"`
	Keys         []rawAPIKey `hcl:"key,block"`
	Signing      *rawSigning `hcl:"signing,block"`
}

type rawAPIKey struct {
	Name   string    `hcl:"name,label"`
	Secret *string   `hcl:"secret,optional"`
	Scopes *[]string `hcl:"scopes,optional"`
}

type rawSigning struct {
	Required       *bool     `hcl:"required,optional"`
	RequiredRoutes *[]string `hcl:"required_routes,optional"`
	Window         *string   `hcl:"window,optional"`
	MinVersion     *string   `hcl:"min_version,optional"`
}

type rawRateLimit struct {
	Enabled                 *bool `hcl:"enabled,optional"`
	WSConnectionsPerMinute  *int  `hcl:"ws_connections_per_minute,optional"`
	WSMessagesPerMinute     *int  `hcl:"ws_messages_per_minute,optional"`
	HTTPRequestsPerMinute   *int  `hcl:"http_requests_per_minute,optional"`
	HTTPFailedAuthPerMinute *int  `hcl:"http_failed_auth_per_minute,optional"`
	MaxKeys                 *int  `hcl:"max_keys,optional"`
}

type rawPlugins struct {
	Dir            *string `hcl:"dir,optional"`
	DefaultTimeout *string `hcl:"default_timeout,optional"`
	MaxInFlight    *int    `hcl:"max_in_flight,optional"`
	DrainTimeout   *string `hcl:"drain_timeout,optional"`
}

type rawPlugin struct {
	Name        string         `hcl:"name,label"`
	Events      *[]string      `hcl:"events,optional"`
	Messages    *[]string      `hcl:"messages,optional"`
	Actions     *[]string      `hcl:"actions,optional"`
	Timeout     *string        `hcl:"timeout,optional"`
	MaxInFlight *int           `hcl:"max_in_flight,optional"`
	SHA256      *string        `hcl:"sha256,optional"`
	Config      hcl.Expression `hcl:"config,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type rawRecovery struct {
	Enabled                  *bool   `hcl:"enabled,optional"`
	MaxDisconnectionDuration *string `hcl:"max_disconnection_duration,optional"`
	MaxPacketsPerSession     *int    `hcl:"max_packets_per_session,optional"`
	MaxPacketsTotal          *int    `hcl:"max_packets_total,optional"`
	MaxBytesTotal            *int    `hcl:"max_bytes_total,optional"`
}

type rawCluster struct {
	RedisURL       *string `hcl:"redis_url,optional"`
	KeyPrefix      *string `hcl:"key_prefix,optional"`
	ConnectTimeout *string `hcl:"connect_timeout,optional"`
	RequestTimeout *string `hcl:"request_timeout,optional"`
	NodeTTL        *string `hcl:"node_ttl,optional"`

	Sentinel     *rawSentinel     `hcl:"sentinel,block"`
	RedisCluster *rawRedisCluster `hcl:"redis_cluster,block"`
}

type rawSentinel struct {
	MasterName       *string   `hcl:"master_name,optional"`
	Addrs            *[]string `hcl:"addrs,optional"`
	Username         *string   `hcl:"username,optional"`
	Password         *string   `hcl:"password,optional"`
	SentinelUsername *string   `hcl:"sentinel_username,optional"`
	SentinelPassword *string   `hcl:"sentinel_password,optional"`
	DB               *int      `hcl:"db,optional"`
	TLS              *bool     `hcl:"tls,optional"`
}

type rawRedisCluster struct {
	Addrs    *[]string `hcl:"addrs,optional"`
	Username *string   `hcl:"username,optional"`
	Password *string   `hcl:"password,optional"`
	TLS      *bool     `hcl:"tls,optional"`
}

type rawMetrics struct {
	Enabled *bool   `hcl:"enabled,optional"`
	Path    *string `hcl:"path,optional"`
}

type rawDemo struct {
	Enabled         *bool   `hcl:"enabled,optional"`
	Path            *string `hcl:"path,optional"`
	Dir             *string `hcl:"dir,optional"`
	TokenTTL        *string `hcl:"token_ttl,optional"`
	TokensPerMinute *int    `hcl:"tokens_per_minute,optional"`
}

type rawLog struct {
	Level  *string `hcl:"level,optional"`
	Format *string `hcl:"format,optional"`
}

// decoder copies written settings over the defaults, collecting diagnostics for the values
// only it can judge (durations, the plugin config object).
type decoder struct {
	c     *Config
	diags hcl.Diagnostics
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// dur parses a duration written at path ("server.shutdown_timeout").
func (d *decoder) dur(dst *time.Duration, src *string, path string) {
	if src == nil {
		return
	}
	v, err := time.ParseDuration(strings.TrimSpace(*src))
	if err != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid duration",
			Detail:   fmt.Sprintf("%s = %q is not a duration; write a number with a unit, like \"25s\", \"500ms\" or \"2m\".", lastPart(path), *src),
			Subject:  d.c.rangeOf(path),
		})
		return
	}
	*dst = v
}

func (d *decoder) apply(r *rawFile) {
	c := d.c
	set(&c.Environment, r.Environment)
	if s := r.Server; s != nil {
		set(&c.Server.Host, s.Host)
		set(&c.Server.Port, s.Port)
		d.dur(&c.Server.ShutdownTimeout, s.ShutdownTimeout, "server.shutdown_timeout")
		set(&c.Server.TrustedProxies, s.TrustedProxies)
		set(&c.Server.MaxHeaderBytes, s.MaxHeaderBytes)
		d.dur(&c.Server.ReadHeaderTimeout, s.ReadHeaderTimeout, "server.read_header_timeout")
		d.dur(&c.Server.IdleTimeout, s.IdleTimeout, "server.idle_timeout")
	}
	if s := r.SocketIO; s != nil {
		o := &c.SocketIO
		set(&o.Path, s.Path)
		set(&o.Transports, s.Transports)
		d.dur(&o.PingInterval, s.PingInterval, "socketio.ping_interval")
		d.dur(&o.PingTimeout, s.PingTimeout, "socketio.ping_timeout")
		set(&o.MaxPayload, s.MaxPayload)
		d.dur(&o.ConnectTimeout, s.ConnectTimeout, "socketio.connect_timeout")
		set(&o.CORSOrigins, s.CORSOrigins)
		set(&o.MaxOutboundBytes, s.MaxOutboundBytes)
		set(&o.MaxEventNameLength, s.MaxEventNameLength)
		set(&o.MaxRoomNameLength, s.MaxRoomNameLength)
		set(&o.MaxRoomsPerSocket, s.MaxRoomsPerSocket)
		set(&o.MaxJSONDepth, s.MaxJSONDepth)
		set(&o.MaxConnections, s.MaxConnections)
		set(&o.MaxConnectionsPerIP, s.MaxConnectionsPerIP)
		set(&o.MaxConnectPayload, s.MaxConnectPayload)
		set(&o.ServeClient, s.ServeClient)
		set(&o.ClientDir, s.ClientDir)
	}
	// An unwritten secret defaults to the environment, as config.hcl's env() would.
	c.Auth.JWTSecret = os.Getenv("JWT_SECRET")
	if a := r.Auth; a != nil {
		o := &c.Auth
		set(&o.JWTSecret, a.JWTSecret)
		set(&o.Algorithms, a.Algorithms)
		set(&o.PublicKeyFile, a.PublicKeyFile)
		set(&o.Issuer, a.Issuer)
		set(&o.Audience, a.Audience)
		d.dur(&o.Leeway, a.Leeway, "auth.leeway")
		set(&o.DisconnectOnExpiry, a.DisconnectOnExpiry)
	}
	c.API.Keys[0].Secret = os.Getenv("API_KEY")
	if a := r.API; a != nil {
		o := &c.API
		set(&o.Listen, a.Listen)
		set(&o.MaxBodyBytes, a.MaxBodyBytes)
		if a.Keys != nil {
			// Written keys replace the default key entirely.
			o.Keys = make([]APIKey, 0, len(a.Keys))
			for _, k := range a.Keys {
				key := APIKey{Name: k.Name, Scopes: []string{ScopeAll}}
				set(&key.Secret, k.Secret)
				set(&key.Scopes, k.Scopes)
				o.Keys = append(o.Keys, key)
			}
		}
		if s := a.Signing; s != nil {
			set(&o.Signing.Required, s.Required)
			set(&o.Signing.RequiredRoutes, s.RequiredRoutes)
			d.dur(&o.Signing.Window, s.Window, "api.signing.window")
			set(&o.Signing.MinVersion, s.MinVersion)
		}
	}
	if rl := r.RateLimit; rl != nil {
		o := &c.RateLimit
		set(&o.Enabled, rl.Enabled)
		set(&o.WSConnectionsPerMinute, rl.WSConnectionsPerMinute)
		set(&o.WSMessagesPerMinute, rl.WSMessagesPerMinute)
		set(&o.HTTPRequestsPerMinute, rl.HTTPRequestsPerMinute)
		set(&o.HTTPFailedAuthPerMinute, rl.HTTPFailedAuthPerMinute)
		set(&o.MaxKeys, rl.MaxKeys)
	}
	if p := r.Plugins; p != nil {
		o := &c.Plugins
		set(&o.Dir, p.Dir)
		d.dur(&o.DefaultTimeout, p.DefaultTimeout, "plugins.default_timeout")
		set(&o.MaxInFlight, p.MaxInFlight)
		d.dur(&o.DrainTimeout, p.DrainTimeout, "plugins.drain_timeout")
	}
	for _, p := range r.Plugin {
		d.plugin(&p)
	}
	if rc := r.Recovery; rc != nil {
		o := &c.Recovery
		set(&o.Enabled, rc.Enabled)
		d.dur(&o.MaxDisconnectionDuration, rc.MaxDisconnectionDuration, "recovery.max_disconnection_duration")
		set(&o.MaxPacketsPerSession, rc.MaxPacketsPerSession)
		set(&o.MaxPacketsTotal, rc.MaxPacketsTotal)
		set(&o.MaxBytesTotal, rc.MaxBytesTotal)
	}
	if cl := r.Cluster; cl != nil {
		set(&c.Cluster.RedisURL, cl.RedisURL)
		set(&c.Cluster.KeyPrefix, cl.KeyPrefix)
		d.dur(&c.Cluster.ConnectTimeout, cl.ConnectTimeout, "cluster.connect_timeout")
		d.dur(&c.Cluster.RequestTimeout, cl.RequestTimeout, "cluster.request_timeout")
		d.dur(&c.Cluster.NodeTTL, cl.NodeTTL, "cluster.node_ttl")
		if sn := cl.Sentinel; sn != nil {
			o := &Sentinel{}
			set(&o.MasterName, sn.MasterName)
			set(&o.Addrs, sn.Addrs)
			set(&o.Username, sn.Username)
			set(&o.Password, sn.Password)
			set(&o.SentinelUsername, sn.SentinelUsername)
			set(&o.SentinelPassword, sn.SentinelPassword)
			set(&o.DB, sn.DB)
			set(&o.TLS, sn.TLS)
			c.Cluster.Sentinel = o
		}
		if rc := cl.RedisCluster; rc != nil {
			o := &RedisCluster{}
			set(&o.Addrs, rc.Addrs)
			set(&o.Username, rc.Username)
			set(&o.Password, rc.Password)
			set(&o.TLS, rc.TLS)
			c.Cluster.RedisCluster = o
		}
	}
	if dm := r.Demo; dm != nil {
		set(&c.Demo.Enabled, dm.Enabled)
		set(&c.Demo.Path, dm.Path)
		set(&c.Demo.Dir, dm.Dir)
		d.dur(&c.Demo.TokenTTL, dm.TokenTTL, "demo.token_ttl")
		set(&c.Demo.TokensPerMinute, dm.TokensPerMinute)
	}
	if m := r.Metrics; m != nil {
		set(&c.Metrics.Enabled, m.Enabled)
		set(&c.Metrics.Path, m.Path)
	}
	if l := r.Log; l != nil {
		set(&c.Log.Level, l.Level)
		set(&c.Log.Format, l.Format)
	}
	d.admin(r.Admin)
}

func (d *decoder) plugin(r *rawPlugin) {
	c := d.c
	base := "plugin." + r.Name + "."
	p := Plugin{
		Name:        r.Name,
		Timeout:     c.Plugins.DefaultTimeout,
		MaxInFlight: c.Plugins.MaxInFlight,
	}
	if r.Events != nil {
		p.Events = *r.Events
	}
	if r.Messages != nil {
		p.Messages = *r.Messages
	}
	if r.Actions != nil {
		p.Actions = *r.Actions
	}
	d.dur(&p.Timeout, r.Timeout, base+"timeout")
	set(&p.MaxInFlight, r.MaxInFlight)
	set(&p.SHA256, r.SHA256)
	if r.Config != nil {
		v, diags := r.Config.Value(evalContext())
		d.diags = append(d.diags, diags...)
		switch {
		case diags.HasErrors() || v.IsNull():
		case !v.IsWhollyKnown() || !(v.Type().IsObjectType() || v.Type().IsMapType()):
			d.diags = append(d.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid plugin config",
				Detail:   "config must be an object, like config = { greeting = \"hi\" }.",
				Subject:  r.Config.Range().Ptr(),
			})
		default:
			b, err := ctyjson.Marshal(v, v.Type())
			if err != nil {
				d.diags = append(d.diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid plugin config",
					Detail:   fmt.Sprintf("config cannot be written as JSON: %v.", err),
					Subject:  r.Config.Range().Ptr(),
				})
				break
			}
			p.Config = b
		}
	}
	c.Plugin = append(c.Plugin, p)
}

func lastPart(path string) string {
	return path[strings.LastIndexByte(path, '.')+1:]
}

// collectRanges maps "block.label.attr" paths to where each attribute and block is written,
// so that checks made after decoding can still point at a line.
func collectRanges(body hcl.Body) map[string]hcl.Range {
	out := make(map[string]hcl.Range)
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return out
	}
	var walk func(prefix string, b *hclsyntax.Body)
	walk = func(prefix string, b *hclsyntax.Body) {
		for name, a := range b.Attributes {
			out[prefix+name] = a.SrcRange
		}
		for _, blk := range b.Blocks {
			p := prefix + blk.Type
			for _, l := range blk.Labels {
				p += "." + l
			}
			if _, dup := out[p]; !dup {
				out[p] = blk.DefRange()
			}
			walk(p+".", blk.Body)
		}
	}
	walk("", sb)
	return out
}
