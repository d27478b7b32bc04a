package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/rtserver/rtserver/core/internal/clientip"
	"github.com/rtserver/rtserver/core/internal/metrics"
	"github.com/rtserver/rtserver/core/internal/ratelimit"
)

// Hub is what the API needs from the hub: emits that report how many sockets they
// reached, and counts for /api/status.
type Hub interface {
	PushToUser(userID, event string, data json.RawMessage) int
	Broadcast(event string, data json.RawMessage) int
	EmitToRoom(room, event string, data json.RawMessage) int
	Stats() Stats
}

// Stats are the hub's counts shown by /api/status.
type Stats struct {
	Connections int
	Rooms       int
	Users       int
}

// PluginLister is optional: its list is served as "plugins" by GET /api/plugins.
type PluginLister interface {
	Plugins() []PluginInfo
}

// PluginInfo is one entry of GET /api/plugins: a plugin, or a file of the plugin folder
// that is not loaded (state "skipped", the reason in Error).
type PluginInfo struct {
	Name     string       `json:"name"`
	Version  string       `json:"version"`
	SHA256   string       `json:"sha256"`
	Routes   PluginRoutes `json:"routes"`
	State    string       `json:"state"`
	Restarts int          `json:"restarts"`
	PID      int          `json:"pid,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// PluginRoutes are the event types, message types and action names a plugin handles.
type PluginRoutes struct {
	Events   []string `json:"events"`
	Messages []string `json:"messages"`
	Actions  []string `json:"actions"`
}

// Route paths.
const (
	RoutePush         = "/api/push"
	RouteBroadcast    = "/api/broadcast"
	RouteRoom         = "/api/room"
	RouteNotification = "/api/notification"
	RouteStatus       = "/api/status"
	RoutePlugins      = "/api/plugins"
	RouteHealth       = "/health"

	// NotificationEvent is the event POST /api/notification emits to the user.
	NotificationEvent = "system:notification"

	// routeUnmatched labels requests that matched no route (404, 405) in metrics, so
	// arbitrary paths do not become label values.
	routeUnmatched = "unmatched"

	defaultMaxBodyBytes = 1 << 20
	maxRequestIDLen     = 128
)

// Options configures the API; core/server fills it from the configuration.
type Options struct {
	Keys         []Key
	MaxBodyBytes int // request body limit; 1 MiB when zero
	Environment  string
	Version      string
	Signing      Signing
	// RequestsPerMinute limits each API key (by name); 0 turns it off.
	RequestsPerMinute int
	// FailedAuthPerMinute limits requests with a missing or wrong key per client IP;
	// 0 turns it off.
	FailedAuthPerMinute int
	// MaxEventNameLength and MaxRoomNameLength bound the event and room names a request
	// may carry, as the socket side bounds a client's (socketio.max_event_name_length,
	// max_room_name_length); 128 when zero.
	MaxEventNameLength int
	MaxRoomNameLength  int
	// MaxLimiterKeys bounds the keys each limiter tracks (passed to ratelimit.New).
	MaxLimiterKeys int
	// TrustedProxies are IPs or CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string
	// MetricsPath serves Prometheus metrics without a key; "" disables it.
	MetricsPath string
	Logger      hclog.Logger
	// Now replaces the clock (tests); time.Now when nil.
	Now func() time.Time
	// On a clustered node: the nonce store and the limits shared by every node, and the
	// cluster's state for /health. Nil on a single node.
	SharedNonces     SharedNonces
	SharedRequests   SharedLimiter
	SharedFailedAuth SharedLimiter
	Cluster          ClusterHealth
}

// API is the HTTP API. Build it with New; serve it with Handler.
type API struct {
	o           Options
	log         hclog.Logger
	hub         Hub
	m           *metrics.Metrics
	plugins     PluginLister
	keys        *keyRing
	proxies     clientip.Proxies
	nonces      *nonceStore
	keyLimiter  *ratelimit.Limiter
	authLimiter *ratelimit.Limiter
	sigRequired map[string]bool
	window      time.Duration
	maxBody     int
	names       nameLimits
	started     time.Time
	now         func() time.Time
	allow       map[string][]string // route path -> methods, for 405's Allow header
	app         *fiber.App
	fast        fasthttp.RequestHandler
}

// ctxKey keys request-scoped values in fasthttp's user values; a private type so that
// nothing a client sends can collide with them.
type ctxKey int

const (
	ctxRequestID ctxKey = iota + 1
	ctxRoute
	ctxFramed
	ctxBodyTooLarge
	ctxBodyUnreadable
)

// New validates o and builds the Fiber app with every route. hub must not be nil; m and
// plugins may be nil (no metrics, an empty plugin list).
func New(o Options, hub Hub, m *metrics.Metrics, plugins PluginLister) (*API, error) {
	if hub == nil {
		return nil, errors.New("httpapi: nil hub")
	}
	keys, err := newKeyRing(o.Keys)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	proxies, err := clientip.Parse(o.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	switch o.Signing.MinVersion {
	case "", SignatureV1, SignatureV2:
	default:
		return nil, fmt.Errorf("httpapi: signing min version %q: want v1 or v2", o.Signing.MinVersion)
	}
	if o.Signing.Window < 0 || o.MaxBodyBytes < 0 || o.RequestsPerMinute < 0 || o.FailedAuthPerMinute < 0 ||
		o.MaxEventNameLength < 0 || o.MaxRoomNameLength < 0 {
		return nil, errors.New("httpapi: negative window, body limit, rate or name length")
	}
	if o.MetricsPath != "" && !strings.HasPrefix(o.MetricsPath, "/") {
		return nil, fmt.Errorf("httpapi: metrics path %q must start with /", o.MetricsPath)
	}
	a := &API{
		o: o, hub: hub, m: m, plugins: plugins, keys: keys, proxies: proxies,
		log:         o.Logger,
		nonces:      newNonceStore(o.Signing.MaxNonces),
		keyLimiter:  ratelimit.New(o.RequestsPerMinute, time.Minute, o.MaxLimiterKeys),
		authLimiter: ratelimit.New(o.FailedAuthPerMinute, time.Minute, o.MaxLimiterKeys),
		sigRequired: map[string]bool{},
		window:      o.Signing.Window,
		maxBody:     o.MaxBodyBytes,
		names:       nameLimits{event: o.MaxEventNameLength, room: o.MaxRoomNameLength},
		now:         o.Now,
		allow:       map[string][]string{},
	}
	if a.log == nil {
		a.log = hclog.NewNullLogger()
	}
	if a.window == 0 {
		a.window = defaultSigningWindow
	}
	if a.maxBody == 0 {
		a.maxBody = defaultMaxBodyBytes
	}
	if a.names.event == 0 {
		a.names.event = defaultMaxNameLength
	}
	if a.names.room == 0 {
		a.names.room = defaultMaxNameLength
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.started = a.now()
	apiRoutes := map[string]bool{RoutePush: true, RouteBroadcast: true, RouteRoom: true,
		RouteNotification: true, RouteStatus: true, RoutePlugins: true}
	for _, r := range o.Signing.RequiredRoutes {
		if !apiRoutes[r] {
			return nil, fmt.Errorf("httpapi: signing required route %q is not an /api route", r)
		}
		a.sigRequired[r] = true
	}
	if o.MetricsPath != "" && (apiRoutes[o.MetricsPath] || o.MetricsPath == RouteHealth) {
		return nil, fmt.Errorf("httpapi: metrics path %q collides with a route", o.MetricsPath)
	}
	if (o.Signing.Required || len(o.Signing.RequiredRoutes) > 0) && o.Signing.MinVersion != SignatureV2 {
		// v1 signs METHOD+PATH+TIMESTAMP+NONCE only: whoever can hold back or outrun a
		// signed request on its way (a proxy, a leaked log of headers) can send its
		// headers with another body while the timestamp is in the window.
		a.log.Warn("request signing is required but v1 signatures are accepted; v1 does not cover the body: set api.signing.min_version = \"v2\"",
			"required", o.Signing.Required, "required_routes", o.Signing.RequiredRoutes)
	}

	// Fiber routes and answers; the connections, header and timeout limits are the HTTP
	// server's in front of Handler (core/server), which is the only way the API is served.
	a.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             a.maxBody,
		ErrorHandler:          a.fiberErrorHandler,
	})
	a.app.Use(a.frame)
	a.route(fiber.MethodGet, RouteHealth, a.health)
	if o.MetricsPath != "" && m != nil {
		a.route(fiber.MethodGet, o.MetricsPath, adaptor.HTTPHandler(m.Handler()))
	}
	a.route(fiber.MethodPost, RoutePush, a.guard(ScopePush, RoutePush), a.push)
	a.route(fiber.MethodPost, RouteBroadcast, a.guard(ScopeBroadcast, RouteBroadcast), a.broadcast)
	a.route(fiber.MethodPost, RouteRoom, a.guard(ScopeRoom, RouteRoom), a.room)
	a.route(fiber.MethodPost, RouteNotification, a.guard(ScopeNotify, RouteNotification), a.notification)
	a.route(fiber.MethodGet, RouteStatus, a.guard(ScopeStatus, RouteStatus), a.status)
	a.route(fiber.MethodGet, RoutePlugins, a.guard(ScopePlugins, RoutePlugins), a.pluginList)

	a.fast = a.app.Handler()
	a.log.Debug("http api ready", "keys", len(o.Keys), "environment", o.Environment, "version", o.Version)
	return a, nil
}

func (a *API) route(method, path string, handlers ...fiber.Handler) {
	named := func(c *fiber.Ctx) error {
		c.Locals(ctxRoute, path)
		return c.Next()
	}
	a.app.Add(method, path, append([]fiber.Handler{named}, handlers...)...)
	a.allow[path] = append(a.allow[path], method)
	if method == fiber.MethodGet {
		// HEAD answers as GET without the body, as HTTP says and the Allow header promises.
		a.app.Add(fiber.MethodHead, path, append([]fiber.Handler{named}, handlers...)...)
		a.allow[path] = append(a.allow[path], fiber.MethodHead)
	}
}

// frame runs first for every routed request: it assigns the request id, enforces the
// body limit, recovers panics, turns every error into the JSON error body, and records
// metrics and a debug log line.
func (a *API) frame(c *fiber.Ctx) error {
	start := time.Now()
	id := requestID(c.Get(headerRequestID))
	c.Locals(ctxRequestID, id)
	c.Locals(ctxFramed, true)
	c.Set(headerRequestID, id)

	err := a.runSafely(c, id)
	if err != nil {
		ae := toAPIError(err)
		if ae.Status >= http.StatusInternalServerError {
			var own *apiError
			if !errors.As(err, &own) {
				a.log.Error("request failed", "route", routeOf(c), "method", c.Method(), "request_id", id, "error", err)
			}
		}
		if ae.Status == http.StatusMethodNotAllowed {
			if m := a.allowedMethods(c.Path()); m != "" {
				c.Set(fiber.HeaderAllow, m)
			}
		}
		writeError(c, ae, id)
	}
	a.observe(c, start)
	return nil
}

func (a *API) runSafely(c *fiber.Ctx, id string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("panic in http handler", "route", routeOf(c), "request_id", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = errInternal
		}
	}()
	fctx := c.Context()
	if fctx.UserValue(ctxBodyTooLarge) != nil || len(c.Request().Body()) > a.maxBody {
		return errTooLarge
	}
	if fctx.UserValue(ctxBodyUnreadable) != nil {
		return errInvalid("Could not read request body")
	}
	return c.Next()
}

func (a *API) allowedMethods(path string) string {
	p := strings.ToLower(path)
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	return strings.Join(a.allow[p], ", ")
}

func routeOf(c *fiber.Ctx) string {
	if r, ok := c.Locals(ctxRoute).(string); ok {
		return r
	}
	return routeUnmatched
}

func (a *API) observe(c *fiber.Ctx, start time.Time) {
	d := time.Since(start)
	route, method, status := routeOf(c), methodLabel(c.Method()), c.Response().StatusCode()
	if a.m != nil {
		a.m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		a.m.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
	}
	if a.log.IsDebug() {
		a.log.Debug("http request", "route", route, "method", method, "status", status,
			"duration", d, "request_id", c.Locals(ctxRequestID))
	}
}

// fiberErrorHandler answers errors that reach Fiber's own error handler: routed requests
// do not, because frame answers their errors itself, and Handler has applied the body limit
// before Fiber sees a request; anything else still gets the JSON error contract.
func (a *API) fiberErrorHandler(c *fiber.Ctx, err error) error {
	id, _ := c.Locals(ctxRequestID).(string)
	if id == "" {
		id = requestID("")
		c.Set(headerRequestID, id)
	}
	writeError(c, toAPIError(err), id)
	if c.Locals(ctxFramed) == nil && a.m != nil {
		a.m.HTTPRequests.WithLabelValues(routeUnmatched, methodLabel(c.Method()), strconv.Itoa(c.Response().StatusCode())).Inc()
	}
	return nil
}

var knownMethods = func() map[string]string {
	m := map[string]string{}
	for _, s := range fiber.DefaultMethods {
		m[s] = s
	}
	return m
}()

// methodLabel bounds the method label: Fiber's methods, anything else "other". It
// returns the package's own copy of the name: c.Method() points into a request buffer
// that Fiber reuses, and a label value is kept for the life of the process.
func methodLabel(m string) string {
	if s, ok := knownMethods[m]; ok {
		return s
	}
	return "other"
}

// requestID echoes a client's id when it is short and made of safe characters (it ends
// up in logs and headers), and makes a new one otherwise.
func requestID(client string) string {
	if n := len(client); n > 0 && n <= maxRequestIDLen {
		ok := true
		for i := 0; i < n && ok; i++ {
			b := client[i]
			ok = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
				b == '-' || b == '_' || b == '.' || b == ':'
		}
		if ok {
			return strings.Clone(client) // the header bytes are reused after the request
		}
	}
	return uuid.NewString()
}

// clientAddr is the address failed authentications are limited by.
func (a *API) clientAddr(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	var xff []string
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		xff = append(xff, string(v))
	}
	return a.proxies.Resolve(peer, xff)
}

type fasthttpLogger struct{ l hclog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn("fasthttp: " + fmt.Sprintf(format, args...))
}
