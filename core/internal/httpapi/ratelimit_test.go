package httpapi

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRateLimitPerKey(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RequestsPerMinute = 2 })
	push := []byte(`{"userId":"alice","event":"e"}`)
	for i := 0; i < 2; i++ {
		r := e.do(t, "POST", "/api/push", key(secretAll), push)
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.raw)
		}
		if r.header.Get(headerRateLimitLimit) != "2" || r.header.Get(headerRateLimitRemaining) != strconv.Itoa(1-i) {
			t.Fatalf("request %d headers: limit %q remaining %q", i,
				r.header.Get(headerRateLimitLimit), r.header.Get(headerRateLimitRemaining))
		}
		reset, err := strconv.ParseInt(r.header.Get(headerRateLimitReset), 10, 64)
		if err != nil || reset < time.Now().Unix() || reset > time.Now().Add(2*time.Minute).Unix() {
			t.Fatalf("reset %q", r.header.Get(headerRateLimitReset))
		}
	}
	r := e.do(t, "POST", "/api/push", key(secretAll), push)
	wantError(t, r, http.StatusTooManyRequests, CodeRateLimited)
	if r.body["error"] != "Rate limit exceeded" {
		t.Fatalf("message %v", r.body["error"])
	}
	ra, _ := r.body["retryAfter"].(float64)
	if ra < 1 || ra > 60 || r.header.Get("Retry-After") != strconv.Itoa(int(ra)) {
		t.Fatalf("retryAfter %v header %q", r.body["retryAfter"], r.header.Get("Retry-After"))
	}
	if r.header.Get(headerRateLimitRemaining) != "0" || r.header.Get(headerRateLimitLimit) != "2" {
		t.Fatalf("429 headers: %v", r.header)
	}
	// Budgets are per key: another key still passes, and counts apply across routes.
	if r := e.do(t, "POST", "/api/push", key(secretPush), push); r.status != 200 {
		t.Fatalf("other key: %d", r.status)
	}
	wantError(t, e.do(t, "GET", "/api/status", key(secretAll), nil), http.StatusTooManyRequests, CodeRateLimited)
	// Keyless routes are not limited and carry no limit headers.
	if r := e.do(t, "GET", "/health", nil, nil); r.status != 200 || r.header.Get(headerRateLimitLimit) != "" {
		t.Fatalf("health: %d %v", r.status, r.header)
	}
	if n := e.hub.count(); n != 3 {
		t.Fatalf("hub emits %d, want 3", n)
	}
}

func TestFailedAuthLimitPerIP(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.FailedAuthPerMinute = 2
		o.TrustedProxies = []string{"127.0.0.1"}
	})
	push := []byte(`{"userId":"alice","event":"e"}`)
	xff := func(ip, secret string) map[string]string {
		h := map[string]string{"X-Forwarded-For": ip}
		if secret != "" {
			h[headerAPIKey] = secret
		}
		return h
	}
	wantError(t, e.do(t, "POST", "/api/push", xff("203.0.113.7", ""), push), 401, CodeUnauthorized)
	r := e.do(t, "POST", "/api/push", xff("203.0.113.7", "bad"), push)
	wantError(t, r, 401, CodeUnauthorized)
	if r.header.Get(headerRateLimitLimit) != "2" {
		t.Fatalf("401 without limit headers: %v", r.header)
	}
	wantError(t, e.do(t, "POST", "/api/push", xff("203.0.113.7", "bad"), push), 429, CodeRateLimited)
	// the good key from the same address is unaffected
	if r := e.do(t, "POST", "/api/push", xff("203.0.113.7", secretAll), push); r.status != 200 {
		t.Fatalf("good key: %d %s", r.status, r.raw)
	}
	// another client behind the same trusted proxy has its own budget
	wantError(t, e.do(t, "POST", "/api/push", xff("198.51.100.1", "bad"), push), 401, CodeUnauthorized)
	// a client cannot pick its address by prepending to X-Forwarded-For
	wantError(t, e.do(t, "POST", "/api/push", xff("198.51.100.99, 203.0.113.7", "bad"), push), 429, CodeRateLimited)
}

func TestUntrustedPeerXFFIgnored(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.FailedAuthPerMinute = 1 })
	push := []byte(`{"userId":"alice","event":"e"}`)
	wantError(t, e.do(t, "POST", "/api/push", map[string]string{"X-Forwarded-For": "1.1.1.1"}, push), 401, CodeUnauthorized)
	// A different X-Forwarded-For does not buy a new budget from an untrusted peer.
	wantError(t, e.do(t, "POST", "/api/push", map[string]string{"X-Forwarded-For": "2.2.2.2"}, push), 429, CodeRateLimited)
}
