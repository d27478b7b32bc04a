package httpapi

import (
	"crypto/hmac"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/rtserver/rtserver/core/internal/ratelimit"
)

// Rate-limit kinds counted in socket_server_rate_limited_total.
const (
	limitKindHTTP     = "http"
	limitKindHTTPAuth = "http_auth"
)

// guard protects one /api route, in this order:
//  1. X-API-Key must match a configured key (else 401, counted per client IP against
//     FailedAuthPerMinute, 429 once that is spent);
//  2. the key's request budget (429);
//  3. the signature, when present or required (401 with a signature code); checked
//     after the budget so a key holder cannot fill the nonce store beyond its rate;
//  4. the key's scope (403).
func (a *API) guard(scope, path string) fiber.Handler {
	required := a.o.Signing.Required || a.sigRequired[path]
	return func(c *fiber.Ctx) error {
		presented := c.Get(headerAPIKey)
		var key *keyEntry
		// A key longer than any configured one cannot match: it is not even hashed.
		if presented != "" && len(presented) <= MaxAPIKeyLength {
			key = a.keys.lookup(presented)
		}
		if key == nil {
			ip := a.clientAddr(c)
			if e := a.limit(c, a.authLimiter, a.o.SharedFailedAuth, ip.String(), limitKindHTTPAuth); e != nil {
				return e
			}
			a.log.Debug("api key refused", "route", path, "ip", ip.String(), "present", presented != "",
				"request_id", c.Locals(ctxRequestID))
			if presented == "" {
				return errUnauthorized(CodeUnauthorized, "Missing API key")
			}
			return errUnauthorized(CodeUnauthorized, "Invalid API key")
		}
		if e := a.limit(c, a.keyLimiter, a.o.SharedRequests, key.name, limitKindHTTP); e != nil {
			return e
		}
		if sig := c.Get(headerSignature); sig != "" || required {
			if e := a.verifySignature(c, key, sig); e != nil {
				a.log.Debug("signature refused", "route", path, "key", key.name, "code", e.Code,
					"request_id", c.Locals(ctxRequestID))
				return e
			}
		}
		if !key.allows(scope) {
			return errForbid
		}
		return c.Next()
	}
}

// limit spends one request from l for id and sets the X-RateLimit-* headers. A nil
// limiter (limit off) allows everything and sets no headers. On a clustered node a
// request this node allows is also counted by the shared limiter, whose answer wins;
// when it cannot answer, this node's stands (the limit then holds per node).
func (a *API) limit(c *fiber.Ctx, l *ratelimit.Limiter, shared SharedLimiter, id, kind string) *apiError {
	if l == nil {
		return nil
	}
	r := l.Allow(id)
	if r.Allowed && shared != nil {
		if sr, err := shared.Allow(id); err == nil {
			r = sr
		}
	}
	c.Set(headerRateLimitLimit, strconv.Itoa(r.Limit))
	c.Set(headerRateLimitRemaining, strconv.Itoa(max(r.Remaining, 0)))
	// Unix seconds, rounded up, as express-rate-limit and GitHub send it.
	reset := r.Reset.Unix()
	if r.Reset.Nanosecond() > 0 {
		reset++
	}
	c.Set(headerRateLimitReset, strconv.FormatInt(reset, 10))
	if r.Allowed {
		return nil
	}
	if a.m != nil {
		a.m.RateLimited.WithLabelValues(kind).Inc()
	}
	return &apiError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: rateLimitedMessage, RetryAfter: r.RetryAfter}
}

// verifySignature checks the SPEC's signing headers against key's secret. The nonce is
// recorded only once the MAC is right, so only key holders can fill the store.
func (a *API) verifySignature(c *fiber.Ctx, key *keyEntry, sig string) *apiError {
	if sig == "" {
		return errUnauthorized(CodeSignatureMissing, "Request signature required")
	}
	h, e := parseSigHeaders(c.Get(headerRequestTimestamp), c.Get(headerRequestNonce), c.Get(headerSignatureVersion), sig)
	if e != nil {
		return e
	}
	if a.o.Signing.MinVersion == SignatureV2 && h.version == SignatureV1 {
		return errUnauthorized(CodeSignatureVersionUnsupported, "Signature version v1 is not accepted; use v2")
	}
	now := a.now().UnixMilli()
	win := a.window.Milliseconds()
	if h.timestamp < now-win || h.timestamp > now+win {
		return errUnauthorized(CodeTimestampInvalid, "Request timestamp outside the allowed window")
	}
	// PATH is the path as the client sent it, without the query string.
	path := string(c.Request().URI().PathOriginal())
	want := expectedMAC(key.secret, h.version, c.Method(), path, h.timestampRaw, h.nonce, c.Request().Body())
	if !hmac.Equal(want, h.mac) {
		return errUnauthorized(CodeSignatureInvalid, "Invalid signature")
	}
	switch a.nonces.add(key.name, h.nonce, h.timestamp+win, now) {
	case nonceReused:
		return errUnauthorized(CodeNonceReused, "Nonce already used")
	case nonceUncheckable:
		return errUnauthorized(CodeTimestampInvalid, "Request timestamp too old to check its nonce; sign again with the current time")
	}
	// New here; another node may have taken it. When the shared store cannot answer, this
	// node's record is all there is to go by.
	if sn := a.o.SharedNonces; sn != nil {
		if fresh, err := sn.ClaimNonce(key.name, h.nonce, time.UnixMilli(h.timestamp+win)); err == nil && !fresh {
			return errUnauthorized(CodeNonceReused, "Nonce already used")
		}
	}
	return nil
}
