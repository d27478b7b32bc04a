package server

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/ratelimit"
	"github.com/rtserver/rtserver/core/internal/webassets"
)

// clientFiles are the bundles the Node server serves next to its endpoint, with the types
// it gives them.
var clientFiles = map[string]string{
	"socket.io.js":             "application/javascript",
	"socket.io.js.map":         "application/json",
	"socket.io.min.js":         "application/javascript",
	"socket.io.min.js.map":     "application/json",
	"socket.io.esm.min.js":     "application/javascript",
	"socket.io.esm.min.js.map": "application/json",
}

// clientHint is what a request for a missing bundle is told.
const clientHint = "the socket.io-client bundles are fetched at build time: run `make client` " +
	"(npm ci in web/client), or set socketio.client_dir to a socket.io-client dist folder"

// demoHint is what a request for a missing demo file is told.
const demoHint = "the demo page is in web/demo of the source tree: run the server from the " +
	"repository root (`make run`) or set demo.dir"

// demoTokenPath is the token endpoint, under the demo's path.
const demoTokenPath = "dev/token"

// maxTokenRequestBytes bounds the token request body: {"userId": "..."}.
const maxTokenRequestBytes = 1024

// web serves the files that are not the API: the client bundles and, in development, the
// demo page with its token endpoint.
type web struct {
	s       *Server
	client  *webassets.Set // nil when socketio.serve_client is off
	demo    *webassets.Set // nil outside development or when the demo is off
	tokens  *ratelimit.Limiter
	hmacAlg string // the algorithm demo tokens are signed with; "" when none is allowed
}

func newWeb(s *Server) *web {
	cfg := s.cfg
	w := &web{s: s}
	if cfg.SocketIO.ServeClient {
		w.client = webassets.New(webassets.Options{
			Dir: cfg.SocketIO.ClientDir, Files: clientFiles,
			// As the Node server: cached, but revalidated every time against the ETag.
			CacheControl: "public, max-age=0",
			Hint:         clientHint,
			Logger:       s.log.Named("client-bundle"),
		})
	}
	if cfg.DemoOn() {
		w.demo = webassets.New(webassets.Options{
			Dir: cfg.Demo.Dir, CacheControl: "no-cache", Hint: demoHint, Logger: s.log.Named("demo"),
		})
		w.tokens = ratelimit.New(cfg.Demo.TokensPerMinute, time.Minute, max(cfg.RateLimit.MaxKeys, 1))
		if i := slices.IndexFunc(cfg.Auth.Algorithms, func(a string) bool { return strings.HasPrefix(a, "HS") }); i >= 0 {
			w.hmacAlg = cfg.Auth.Algorithms[i]
		}
	}
	return w
}

// serve answers r when it is one of the web routes and reports whether it did.
func (w *web) serve(rw http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if w.client != nil {
		if name, ok := strings.CutPrefix(p, w.s.cfg.SocketIO.Path); ok {
			// A path written without its trailing slash ("/socket.io") still puts the
			// bundle at /socket.io/socket.io.js, as the Node server does.
			name = strings.TrimPrefix(name, "/")
			if _, known := clientFiles[name]; known {
				w.client.Serve(rw, r, name)
				return true
			}
		}
	}
	if w.demo == nil {
		return false
	}
	name, ok := strings.CutPrefix(p, w.s.cfg.Demo.Path)
	if !ok {
		return false
	}
	if name == demoTokenPath {
		w.mintToken(rw, r)
		return true
	}
	if name == "" {
		name = "index.html"
	}
	// Only files that exist are the demo's: every other path stays the API's (a 404 there
	// is its JSON 404). The page itself answers with the hint when it is missing.
	if name == "index.html" || w.demo.Has(name) {
		w.demo.Serve(rw, r, name)
		return true
	}
	return false
}

// mintToken signs a short-lived token for the user the demo page names. It exists only in
// development, where anyone who reaches the server may be anyone: that is what the
// development secrets are for. Rate limited per client IP all the same.
func (w *web) mintToken(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", "POST")
		webassets.WriteError(rw, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed", "")
		return
	}
	ip := w.s.guard.clientIP(r.RemoteAddr, r.Header.Values(xffHeader))
	if res := w.tokens.Allow(ip); !res.Allowed {
		secs := int64(res.RetryAfter/time.Second) + 1
		rw.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		webassets.WriteError(rw, http.StatusTooManyRequests, "RATE_LIMITED", "Too many tokens requested; try again later", "")
		return
	}
	if w.hmacAlg == "" {
		webassets.WriteError(rw, http.StatusNotImplemented, "NOT_IMPLEMENTED",
			"Demo tokens need an HMAC algorithm (HS256, HS384 or HS512) in auth.algorithms", "")
		return
	}
	var req struct {
		UserID string `json:"userId"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenRequestBytes+1))
	if err != nil || len(body) > maxTokenRequestBytes || json.Unmarshal(body, &req) != nil {
		webassets.WriteError(rw, http.StatusBadRequest, "INVALID_REQUEST", "Body must be {\"userId\": \"...\"} of at most 1024 bytes", "")
		return
	}
	if err := auth.CheckUserID(req.UserID); err != nil {
		webassets.WriteError(rw, http.StatusBadRequest, "INVALID_REQUEST", err.Error(), "")
		return
	}
	ttl := w.s.cfg.Demo.TokenTTL
	tok, err := auth.MintFor([]byte(w.s.cfg.Auth.JWTSecret), w.hmacAlg, req.UserID, ttl,
		w.s.cfg.Auth.Issuer, w.s.cfg.Auth.Audience)
	if err != nil {
		w.s.log.Error("demo token", "error", err)
		webassets.WriteError(rw, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal server error", "")
		return
	}
	out, _ := json.Marshal(map[string]any{"success": true, "token": tok, "userId": req.UserID,
		"expiresIn": int64(ttl / time.Second)})
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = rw.Write(out)
}
