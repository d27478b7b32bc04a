package httpapi

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type signedReq struct {
	secret, version, method, path, nonce string
	ts                                   time.Time
	body                                 []byte
	signBody                             []byte // body the signature covers; body when nil
	signPath                             string // path the signature covers; path when ""
}

func (s signedReq) headers() map[string]string {
	ts := strconv.FormatInt(s.ts.UnixMilli(), 10)
	sb := s.signBody
	if sb == nil {
		sb = s.body
	}
	sp := s.signPath
	if sp == "" {
		sp = s.path
	}
	if i := strings.IndexByte(sp, '?'); i >= 0 {
		sp = sp[:i]
	}
	h := map[string]string{
		headerAPIKey:           s.secret,
		headerRequestTimestamp: ts,
		headerRequestNonce:     s.nonce,
		headerSignature:        Sign(s.secret, s.version, s.method, sp, ts, s.nonce, sb),
	}
	if s.version != "" {
		h[headerSignatureVersion] = s.version
	}
	return h
}

func TestSignatures(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Signing.Required = true; o.Signing.Window = time.Minute })
	push := []byte(`{"userId":"alice","event":"e"}`)
	base := signedReq{secret: secretAll, method: "POST", path: "/api/push", ts: time.Now(), body: push}
	nonce := 0
	next := func(s signedReq) signedReq { nonce++; s.nonce = "n-" + strconv.Itoa(nonce); return s }
	ok := func(s signedReq) {
		t.Helper()
		if r := e.do(t, s.method, s.path, s.headers(), s.body); r.status != 200 {
			t.Fatalf("%+v: %d %s", s, r.status, r.raw)
		}
	}
	refused := func(s signedReq, hdr map[string]string, code string) {
		t.Helper()
		if hdr == nil {
			hdr = s.headers()
		}
		wantError(t, e.do(t, s.method, s.path, hdr, s.body), 401, code)
	}

	v1 := next(base)
	v1.version = SignatureV1
	ok(v1)
	noVersion := next(base) // no X-Signature-Version means v1
	ok(noVersion)
	v2 := next(base)
	v2.version = SignatureV2
	ok(v2)
	status := next(signedReq{secret: secretStatus, version: SignatureV2, method: "GET", path: "/api/status", ts: time.Now()})
	ok(status)
	// The query string is not part of PATH.
	q := next(status)
	q.path = "/api/status?verbose=1"
	ok(q)

	refused(v1, nil, CodeNonceReused) // replay of an accepted request
	refused(v2, nil, CodeNonceReused)

	stale := next(v2)
	stale.ts = time.Now().Add(-2 * time.Minute)
	refused(stale, nil, CodeTimestampInvalid)
	future := next(v2)
	future.ts = time.Now().Add(2 * time.Minute)
	refused(future, nil, CodeTimestampInvalid)
	garbled := next(v2)
	h := garbled.headers()
	h[headerRequestTimestamp] = "12x4"
	refused(garbled, h, CodeTimestampInvalid)

	tampered := next(v2)
	tampered.signBody = []byte(`{"userId":"bob","event":"e"}`)
	refused(tampered, nil, CodeSignatureInvalid)
	// v1 does not cover the body, so only v2 catches that
	wrongSecret := next(v2)
	h = wrongSecret.headers()
	wrongSecret.secret = secretPush
	h[headerSignature] = wrongSecret.headers()[headerSignature]
	refused(wrongSecret, h, CodeSignatureInvalid)
	wrongPath := next(v2)
	wrongPath.signPath = "/api/broadcast"
	refused(wrongPath, nil, CodeSignatureInvalid)
	notHex := next(v2)
	h = notHex.headers()
	h[headerSignature] = strings.Repeat("zz", 32)
	refused(notHex, h, CodeSignatureInvalid)

	badVersion := next(v2)
	h = badVersion.headers()
	h[headerSignatureVersion] = "v3"
	refused(badVersion, h, CodeSignatureVersionUnsupported)

	missing := next(v2)
	h = missing.headers()
	delete(h, headerSignature)
	refused(missing, h, CodeSignatureMissing)
	h = missing.headers()
	delete(h, headerRequestNonce)
	refused(missing, h, CodeSignatureMissing)
	h = missing.headers()
	delete(h, headerRequestTimestamp)
	refused(missing, h, CodeSignatureMissing)

	longNonce := base
	longNonce.version = SignatureV2
	longNonce.nonce = strings.Repeat("n", maxNonceLen+1)
	refused(longNonce, nil, CodeSignatureInvalid)

	// A failed signature does not burn the nonce: the genuine request still passes.
	genuine := next(v2)
	forged := genuine
	forged.signBody = []byte("{}")
	refused(forged, nil, CodeSignatureInvalid)
	ok(genuine)

	// Scope is checked after the signature: a well-signed request with the wrong
	// scope is 403.
	wrongScope := next(signedReq{secret: secretStatus, version: SignatureV2, method: "POST", path: "/api/push", ts: time.Now(), body: push})
	wantError(t, e.do(t, "POST", "/api/push", wrongScope.headers(), push), 403, CodeForbidden)
}

func TestSignaturePolicy(t *testing.T) {
	push := []byte(`{"userId":"alice","event":"e"}`)
	t.Run("required routes only", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Signing.RequiredRoutes = []string{RoutePush} })
		wantError(t, e.do(t, "POST", "/api/push", key(secretAll), push), 401, CodeSignatureMissing)
		if r := e.do(t, "POST", "/api/broadcast", key(secretAll), []byte(`{"event":"e"}`)); r.status != 200 {
			t.Fatalf("unsigned broadcast: %d %s", r.status, r.raw)
		}
		// a signature that is present is always verified
		s := signedReq{secret: secretAll, version: SignatureV1, method: "POST", path: "/api/broadcast",
			nonce: "x1", ts: time.Now(), body: []byte(`{"event":"e"}`)}
		h := s.headers()
		h[headerSignature] = strings.Repeat("0", 64)
		wantError(t, e.do(t, "POST", "/api/broadcast", h, s.body), 401, CodeSignatureInvalid)
	})
	t.Run("min version v2", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Signing.Required = true; o.Signing.MinVersion = SignatureV2 })
		s := signedReq{secret: secretAll, version: SignatureV1, method: "POST", path: "/api/push", nonce: "a", ts: time.Now(), body: push}
		wantError(t, e.do(t, "POST", "/api/push", s.headers(), push), 401, CodeSignatureVersionUnsupported)
		s.version = ""
		wantError(t, e.do(t, "POST", "/api/push", s.headers(), push), 401, CodeSignatureVersionUnsupported)
		s.version = SignatureV2
		if r := e.do(t, "POST", "/api/push", s.headers(), push); r.status != 200 {
			t.Fatalf("v2: %d %s", r.status, r.raw)
		}
	})
	t.Run("not required", func(t *testing.T) {
		e := newEnv(t)
		if r := e.do(t, "POST", "/api/push", key(secretAll), push); r.status != 200 {
			t.Fatalf("unsigned: %d %s", r.status, r.raw)
		}
	})
}

// Vectors computed independently with openssl:
//
//	printf 'GET/api/status1625097600000abc123' | openssl dgst -sha256 -hmac key
//	printf "POST/api/push1625097600000abc123$(printf '{"a":1}' | sha256sum | cut -d' ' -f1)" | openssl dgst -sha256 -hmac key
func TestSignKnownVectors(t *testing.T) {
	if got := Sign("key", SignatureV1, "GET", "/api/status", "1625097600000", "abc123", nil); got != "57305eb8d4b6660f93a3d2423b7458f1573664026fc95c960f92d6695f7b2eaa" {
		t.Errorf("v1 = %s", got)
	}
	if got := Sign("key", SignatureV2, "POST", "/api/push", "1625097600000", "abc123", []byte(`{"a":1}`)); got != "28a636f28d3ebc2ce907c7655fad4d544e6fe3011685d8f063da10aa3f2ba2cc" {
		t.Errorf("v2 = %s", got)
	}
}

func TestNonceStore(t *testing.T) {
	s := newNonceStore(3)
	if s.add("k", "a", 100, 0) != nonceNew || s.add("k", "a", 100, 50) != nonceReused {
		t.Fatal("replay not caught")
	}
	if s.add("other", "a", 100, 0) != nonceNew {
		t.Fatal("nonces are per key")
	}
	if s.add("k", "a", 300, 100) != nonceNew {
		t.Fatal("expired nonce still remembered")
	}
	// Bounded: the soonest-expiring entries go first, and what expires no later than an
	// evicted entry can no longer be checked.
	s = newNonceStore(3)
	for i, exp := range []int64{500, 200, 400, 300, 600} {
		if r := s.add("k", strconv.Itoa(i), exp, 0); r != nonceNew {
			t.Fatalf("add %d = %v", i, r)
		}
	}
	if s.len() != 3 {
		t.Fatalf("len = %d", s.len())
	}
	// Evicted: "1" (200) and "3" (300); floor 300.
	if r := s.add("k", "1", 200, 0); r != nonceUncheckable {
		t.Fatalf("evicted nonce with its old expiry = %v, want uncheckable", r)
	}
	if r := s.add("k", "fresh", 300, 0); r != nonceUncheckable {
		t.Fatalf("expiry at the floor = %v, want uncheckable", r)
	}
	if r := s.add("k", "4", 700, 0); r != nonceReused {
		t.Fatalf("kept nonce = %v, want reused", r)
	}
	if r := s.add("k", "1", 700, 0); r != nonceNew {
		t.Fatalf("later expiry = %v, want new", r)
	}
	// Expired entries are pruned on insert.
	s.add("k", "late", 10_000, 5_000)
	if s.len() != 1 {
		t.Fatalf("len after prune = %d", s.len())
	}
}

func TestParseSigHeaders(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	cases := []struct {
		ts, nonce, ver, sig, code string
	}{
		{"1", "n", "v1", sig, ""},
		{"1", "n", "V2", sig, ""},
		{"1", "n", "", sig, ""},
		{"", "n", "v1", sig, CodeSignatureMissing},
		{"1", "", "v1", sig, CodeSignatureMissing},
		{"1", "n", "v9", sig, CodeSignatureVersionUnsupported},
		{"-1", "n", "v1", sig, CodeTimestampInvalid},
		{"1.5", "n", "v1", sig, CodeTimestampInvalid},
		{strings.Repeat("9", 30), "n", "v1", sig, CodeTimestampInvalid},
		{"1", "has space", "v1", sig, CodeSignatureInvalid},
		{"1", "n", "v1", sig[:62], CodeSignatureInvalid},
		{"1", "n", "v1", strings.Repeat("g", 64), CodeSignatureInvalid},
	}
	for _, tc := range cases {
		_, e := parseSigHeaders(tc.ts, tc.nonce, tc.ver, tc.sig)
		got := ""
		if e != nil {
			got = e.Code
		}
		if got != tc.code {
			t.Errorf("parse(%q,%q,%q,%q) = %q, want %q", tc.ts, tc.nonce, tc.ver, tc.sig, got, tc.code)
		}
	}
}

// A full nonce store must not forget a nonce and then take its request again: once an
// unexpired entry is evicted, requests that would expire no later than it are refused.
func TestFullNonceStoreRefusesForgottenRequests(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Signing.Required, o.Signing.Window, o.Signing.MaxNonces = true, time.Minute, 2
	})
	push := []byte(`{"userId":"alice","event":"e"}`)
	now := time.Now()
	req := func(nonce string, age time.Duration) signedReq {
		return signedReq{secret: secretAll, version: SignatureV2, method: "POST", path: "/api/push",
			nonce: nonce, ts: now.Add(-age), body: push}
	}
	oldest, middle, newest := req("a", 30*time.Second), req("b", 20*time.Second), req("c", 10*time.Second)
	for _, s := range []signedReq{oldest, middle, newest} {
		if r := e.do(t, "POST", "/api/push", s.headers(), push); r.status != 200 {
			t.Fatalf("%s: %d %s", s.nonce, r.status, r.raw)
		}
	}
	// "a" was evicted to make room for "c": its replay cannot be checked.
	wantError(t, e.do(t, "POST", "/api/push", oldest.headers(), push), 401, CodeTimestampInvalid)
	wantError(t, e.do(t, "POST", "/api/push", middle.headers(), push), 401, CodeNonceReused)
	wantError(t, e.do(t, "POST", "/api/push", newest.headers(), push), 401, CodeNonceReused)
	// A request as old as the forgotten one, with a new nonce, is refused too;
	// a fresh one passes.
	wantError(t, e.do(t, "POST", "/api/push", req("d", 30*time.Second).headers(), push), 401, CodeTimestampInvalid)
	if r := e.do(t, "POST", "/api/push", req("e", 0).headers(), push); r.status != 200 {
		t.Fatalf("fresh request: %d %s", r.status, r.raw)
	}
	if n := e.hub.count(); n != 4 {
		t.Fatalf("hub emits = %d, want 4", n)
	}
}

// Header values a stranger controls are bounded before any work is done on them.
func TestSigningHeaderLengths(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Signing.Required = true })
	push := []byte(`{"userId":"alice","event":"e"}`)
	wantError(t, e.do(t, "POST", "/api/push", key(strings.Repeat("k", MaxAPIKeyLength+1)), push), 401, CodeUnauthorized)
	s := signedReq{secret: secretAll, version: SignatureV2, method: "POST", path: "/api/push", nonce: "n1", ts: time.Now(), body: push}
	h := s.headers()
	h[headerSignatureVersion] = strings.Repeat(SignatureV2, 1000)
	wantError(t, e.do(t, "POST", "/api/push", h, push), 401, CodeSignatureVersionUnsupported)
	h = s.headers()
	h[headerSignature] += "00"
	wantError(t, e.do(t, "POST", "/api/push", h, push), 401, CodeSignatureInvalid)
	if r := e.do(t, "POST", "/api/push", s.headers(), push); r.status != 200 {
		t.Fatalf("genuine request: %d %s", r.status, r.raw)
	}
}

func TestAPIKeySecretLength(t *testing.T) {
	long := strings.Repeat("s", MaxAPIKeyLength)
	if _, err := New(Options{Keys: []Key{{Name: "a", Secret: long + "s", Scopes: []string{ScopeAll}}}}, newFakeHub(), nil, nil); err == nil {
		t.Fatal("secret over MaxAPIKeyLength accepted")
	}
	e := newEnv(t, func(o *Options) { o.Keys = []Key{{Name: "long", Secret: long, Scopes: []string{ScopeAll}}} })
	if r := e.do(t, "GET", "/api/status", key(long), nil); r.status != 200 {
		t.Fatalf("key at the limit: %d %s", r.status, r.raw)
	}
}

// Requiring signatures while v1 is accepted leaves bodies unsigned: the start-up log says so.
func TestWarnsWhenRequiredSigningAcceptsV1(t *testing.T) {
	cases := []struct {
		name string
		s    Signing
		warn bool
	}{
		{"required, v1 allowed", Signing{Required: true}, true},
		{"required routes, min v1", Signing{RequiredRoutes: []string{RoutePush}, MinVersion: SignatureV1}, true},
		{"required, min v2", Signing{Required: true, MinVersion: SignatureV2}, false},
		{"not required", Signing{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			log := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &buf})
			if _, err := New(Options{Keys: testKeys(), Signing: tc.s, Logger: log}, newFakeHub(), nil, nil); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			got := strings.Contains(out, "[WARN]") && strings.Contains(out, "min_version")
			if got != tc.warn {
				t.Fatalf("warned = %v, want %v; log:\n%s", got, tc.warn, out)
			}
		})
	}
}
