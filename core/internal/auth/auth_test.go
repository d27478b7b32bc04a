package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtserver/rtserver/core/internal/coded"
)

var secret = []byte("test-secret-of-a-decent-length-0123456789")

// sign builds a token with arbitrary claims.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func good(extra map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"userId": "user-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// raw builds a token from a literal header and claims with a given signature segment.
func raw(header, claims, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + sig
}

func newVerifier(t testing.TB, o Options) *Verifier {
	t.Helper()
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyHS256(t *testing.T) {
	v := newVerifier(t, Options{Secret: secret, Algorithms: []string{"HS256"}, Leeway: 30 * time.Second})
	now := time.Now()
	claimsJSON, _ := json.Marshal(good(nil))

	cases := []struct {
		name  string
		token string
		code  string // "" = accepted
	}{
		{"valid", sign(t, jwt.SigningMethodHS256, secret, good(nil)), ""},
		{"valid with Bearer prefix", "Bearer " + sign(t, jwt.SigningMethodHS256, secret, good(nil)), ""},
		{"missing", "", coded.TokenMissing},
		{"blank", "   ", coded.TokenMissing},
		{"one segment", "abc", coded.TokenMalformed},
		{"four segments", "a.b.c.d", coded.TokenMalformed},
		{"bad base64", "!!!.???.###", coded.TokenMalformed},
		{"header not JSON", raw("nope", "{}", ""), coded.TokenMalformed},
		{"claims not JSON", raw(`{"alg":"HS256"}`, "nope", ""), coded.TokenMalformed},
		{"exp not a number", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": "soon"})), coded.TokenMalformed},
		{"exp a numeric string", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": "9999999999"})), coded.TokenMalformed},
		{"exp an object", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": map[string]any{"n": 9999999999}})), coded.TokenMalformed},
		{"exp a boolean", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": true})), coded.TokenMalformed},
		{"exp past year 9999", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": 1e300})), coded.TokenMalformed},
		{"iat a numeric string", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"iat": "1"})), coded.TokenMalformed},
		{"iat negative", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"iat": -1})), coded.TokenMalformed},
		{"nbf a numeric string", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"nbf": "1"})), coded.TokenMalformed},
		{"fractional exp", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": float64(now.Unix()) + 3600.5})), ""},
		{"token too long", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"pad": strings.Repeat("x", MaxTokenLength)})), coded.TokenMalformed},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("other"), good(nil)), coded.TokenInvalidSignature},
		{"tampered payload", func() string {
			tok := sign(t, jwt.SigningMethodHS256, secret, good(nil))
			parts := strings.Split(tok, ".")
			forged := good(map[string]any{"userId": "admin"})
			b, _ := json.Marshal(forged)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
		}(), coded.TokenInvalidSignature},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()})), coded.TokenExpired},
		{"expired within leeway", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), ""},
		{"alg none", raw(`{"alg":"none","typ":"JWT"}`, string(claimsJSON), ""), coded.TokenAlgNotAllowed},
		{"alg none signed by the library", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good(nil)), coded.TokenAlgNotAllowed},
		{"alg NONE", raw(`{"alg":"NONE"}`, string(claimsJSON), ""), coded.TokenAlgNotAllowed},
		{"alg not in list", sign(t, jwt.SigningMethodHS512, secret, good(nil)), coded.TokenAlgNotAllowed},
		{"alg unknown", raw(`{"alg":"XX256"}`, string(claimsJSON), "c2ln"), coded.TokenAlgNotAllowed},
		{"alg missing", raw(`{"typ":"JWT"}`, string(claimsJSON), "c2ln"), coded.TokenAlgNotAllowed},
		{"no userId", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"userId": nil})), coded.TokenMissingClaim},
		{"empty userId", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"userId": ""})), coded.TokenMissingClaim},
		{"numeric userId", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"userId": 42})), coded.TokenMissingClaim},
		{"userId too long", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"userId": strings.Repeat("u", MaxUserIDLength+1)})), coded.TokenInvalid},
		{"userId with a control character", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"userId": "user\n1"})), coded.TokenInvalid},
		{"userId with a format character", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"userId": "user\u202e1"})), coded.TokenInvalid},
		{"no exp", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"exp": nil})), coded.TokenMissingClaim},
		{"no iat", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"iat": nil})), coded.TokenMissingClaim},
		{"iat in the future", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"iat": now.Add(10 * time.Minute).Unix()})), coded.TokenInvalid},
		{"iat in the future within leeway", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"iat": now.Add(10 * time.Second).Unix()})), ""},
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, secret, good(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), coded.TokenInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.UserID != "user-1" || c.ExpiresAt.IsZero() || c.IssuedAt.IsZero() {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			var ae *coded.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *auth.Error %s", err, err, tc.code)
			}
			if ae.Code != tc.code {
				t.Fatalf("code = %s (%v), want %s", ae.Code, err, tc.code)
			}
			if codeOf(err) != tc.code || c != nil {
				t.Fatalf("CodeOf = %q, claims = %v", codeOf(err), c)
			}
		})
	}
}

func TestCheckUserID(t *testing.T) {
	ok := []string{"u", "user-1", "alice@example.com", "José Müller", "用户", strings.Repeat("é", MaxUserIDLength/2)}
	bad := []string{"", "   ", "\t", strings.Repeat("u", MaxUserIDLength+1), "a\x00b", "a\nb", "a\u007fb",
		"a\u200bb", "a\u202eb", "a\u00a0b", "bad-\xff", "a\ufffdb"}
	for _, id := range ok {
		if err := CheckUserID(id); err != nil {
			t.Errorf("CheckUserID(%q) = %v", id, err)
		}
	}
	for _, id := range bad {
		if err := CheckUserID(id); err == nil {
			t.Errorf("CheckUserID(%q) accepted", id)
		}
	}
}

// A token whose userId has invalid UTF-8 bytes decodes them to U+FFFD, which is refused.
func TestVerifyUserIDWithInvalidUTF8(t *testing.T) {
	v := newVerifier(t, Options{Secret: secret})
	now := time.Now().Unix()
	payload := fmt.Sprintf(`{"userId":"user-`+"\xff"+`","iat":%d,"exp":%d}`, now, now+60)
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(signing, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(signing + "." + enc(sig)); codeOf(err) != coded.TokenInvalid {
		t.Fatalf("err = %v (%v), want %s", err, errors.Unwrap(err), coded.TokenInvalid)
	}
}

func TestIssuerAndAudience(t *testing.T) {
	v := newVerifier(t, Options{Secret: secret, Algorithms: []string{"HS256"}, Issuer: "rt", Audience: "app"})
	cases := []struct {
		name  string
		extra map[string]any
		code  string
	}{
		{"both right", map[string]any{"iss": "rt", "aud": "app"}, ""},
		{"audience in a list", map[string]any{"iss": "rt", "aud": []string{"x", "app"}}, ""},
		{"wrong issuer", map[string]any{"iss": "evil", "aud": "app"}, coded.TokenInvalid},
		{"missing issuer", map[string]any{"aud": "app"}, coded.TokenInvalid},
		{"wrong audience", map[string]any{"iss": "rt", "aud": "other"}, coded.TokenInvalid},
		{"missing audience", map[string]any{"iss": "rt"}, coded.TokenInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, good(tc.extra)))
			if codeOf(err) != tc.code {
				t.Fatalf("err = %v, want code %q", err, tc.code)
			}
		})
	}
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// writePEM writes a PEM block to a file in a temp dir and returns its path and contents.
func writePEM(t *testing.T, typ string, der []byte) (string, []byte) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

func pkixDER(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestRS256WithKeyFile(t *testing.T) {
	priv := testRSAKey(t)
	path, pemBytes := writePEM(t, "PUBLIC KEY", pkixDER(t, &priv.PublicKey))
	v := newVerifier(t, Options{Algorithms: []string{"RS256"}, PublicKeyFile: path})

	c, err := v.Verify(sign(t, jwt.SigningMethodRS256, priv, good(nil)))
	if err != nil || c.UserID != "user-1" {
		t.Fatalf("valid RS256 refused: %v", err)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, other, good(nil))); codeOf(err) != coded.TokenInvalidSignature {
		t.Fatalf("other key: %v", err)
	}

	// Key confusion: an HS256 token whose HMAC secret is the public key's PEM must not be
	// checked with that public key.
	confused := sign(t, jwt.SigningMethodHS256, pemBytes, good(nil))
	if _, err := v.Verify(confused); codeOf(err) != coded.TokenAlgNotAllowed {
		t.Fatalf("HS256 token accepted by an RS256-only verifier: %v", err)
	}
	if _, err := v.Verify(must(Mint(secret, "HS256", "u", time.Hour))); codeOf(err) != coded.TokenAlgNotAllowed {
		t.Fatalf("HS256 token: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS512, priv, good(nil))); codeOf(err) != coded.TokenAlgNotAllowed {
		t.Fatalf("RS512 token: %v", err)
	}

	// With both HS256 and RS256 allowed, the confused token meets the HMAC secret and fails.
	both := newVerifier(t, Options{Secret: secret, Algorithms: []string{"HS256", "RS256"}, PublicKeyFile: path})
	if _, err := both.Verify(confused); codeOf(err) != coded.TokenInvalidSignature {
		t.Fatalf("confused token with HS256+RS256: %v", err)
	}
	if _, err := both.Verify(sign(t, jwt.SigningMethodRS256, priv, good(nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := both.Verify(sign(t, jwt.SigningMethodHS256, secret, good(nil))); err != nil {
		t.Fatal(err)
	}
}

func TestES256WithKeyFile(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := writePEM(t, "PUBLIC KEY", pkixDER(t, &priv.PublicKey))
	v := newVerifier(t, Options{Algorithms: []string{"ES256"}, PublicKeyFile: path})
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, priv, good(nil))); err != nil {
		t.Fatalf("valid ES256 refused: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, other, good(nil))); codeOf(err) != coded.TokenInvalidSignature {
		t.Fatalf("other key: %v", err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, good(nil))); codeOf(err) != coded.TokenAlgNotAllowed {
		t.Fatalf("HS256 token: %v", err)
	}
	expired := sign(t, jwt.SigningMethodES256, priv, good(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))
	if _, err := v.Verify(expired); codeOf(err) != coded.TokenExpired {
		t.Fatalf("expired: %v", err)
	}
}

func TestPublicKeyFormats(t *testing.T) {
	priv := testRSAKey(t)
	t.Run("PKCS1", func(t *testing.T) {
		path, _ := writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&priv.PublicKey))
		v := newVerifier(t, Options{Algorithms: []string{"RS256"}, PublicKeyFile: path})
		if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, priv, good(nil))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("certificate", func(t *testing.T) {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
		if err != nil {
			t.Fatal(err)
		}
		path, _ := writePEM(t, "CERTIFICATE", der)
		v := newVerifier(t, Options{Algorithms: []string{"RS256"}, PublicKeyFile: path})
		if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, priv, good(nil))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("in memory", func(t *testing.T) {
		v := newVerifier(t, Options{Algorithms: []string{"RS256"}, PublicKey: &priv.PublicKey})
		if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, priv, good(nil))); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewVerifierRefusesBadOptions(t *testing.T) {
	priv := testRSAKey(t)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaPath, _ := writePEM(t, "PUBLIC KEY", pkixDER(t, &priv.PublicKey))
	privPath, _ := writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(priv))
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    Options
	}{
		{"unknown algorithm", Options{Secret: secret, Algorithms: []string{"HS256", "none"}}},
		{"HS256 without secret", Options{Algorithms: []string{"HS256"}}},
		{"default algorithm without secret", Options{}},
		{"RS256 without key", Options{Algorithms: []string{"RS256"}}},
		{"RS256 with missing file", Options{Algorithms: []string{"RS256"}, PublicKeyFile: filepath.Join(t.TempDir(), "none.pem")}},
		{"RS256 with a non-PEM file", Options{Algorithms: []string{"RS256"}, PublicKeyFile: garbage}},
		{"RS256 with a private key file", Options{Algorithms: []string{"RS256"}, PublicKeyFile: privPath}},
		{"RS256 with an EC key", Options{Algorithms: []string{"RS256"}, PublicKey: &ec384.PublicKey}},
		{"ES256 with an RSA key", Options{Algorithms: []string{"ES256"}, PublicKeyFile: rsaPath}},
		{"ES256 with a P-384 key", Options{Algorithms: []string{"ES256"}, PublicKey: &ec384.PublicKey}},
		{"unsupported key type", Options{Algorithms: []string{"RS256"}, PublicKey: "key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewVerifier(tc.o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestMint(t *testing.T) {
	for _, alg := range []string{"", "HS256", "HS384", "HS512"} {
		tok, err := Mint(secret, alg, "u-9", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		want := alg
		if want == "" {
			want = "HS256"
		}
		v := newVerifier(t, Options{Secret: secret, Algorithms: []string{want}})
		c, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if c.UserID != "u-9" || c.ExpiresAt.Sub(c.IssuedAt) != time.Minute {
			t.Fatalf("claims = %+v", c)
		}
	}
	v := newVerifier(t, Options{Secret: secret})
	if _, err := v.Verify(must(Mint(secret, "HS256", "u", -time.Minute))); codeOf(err) != coded.TokenExpired {
		t.Fatalf("negative ttl: %v", err)
	}
	for _, bad := range []struct {
		secret    []byte
		alg, user string
	}{{secret, "RS256", "u"}, {secret, "none", "u"}, {nil, "HS256", "u"}, {secret, "HS256", ""}, {secret, "HS256", "a\nb"},
		{secret, "HS256", strings.Repeat("u", MaxUserIDLength+1)}} {
		if _, err := Mint(bad.secret, bad.alg, bad.user, time.Minute); err == nil {
			t.Errorf("Mint(%q, %q, %q) accepted", bad.secret, bad.alg, bad.user)
		}
	}
}

func TestNowOption(t *testing.T) {
	tok := must(Mint(secret, "HS256", "u", time.Minute))
	later := func() time.Time { return time.Now().Add(10 * time.Minute) }
	v := newVerifier(t, Options{Secret: secret, Now: later})
	if _, err := v.Verify(tok); codeOf(err) != coded.TokenExpired {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorDoesNotLeakToken(t *testing.T) {
	v := newVerifier(t, Options{Secret: secret})
	tok := sign(t, jwt.SigningMethodHS256, []byte("other"), good(nil))
	_, err := v.Verify(tok)
	var ae *coded.Error
	if !errors.As(err, &ae) || strings.Contains(ae.Message, tok) || strings.Contains(err.Error(), tok) {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("cause not kept: %v", err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t, Options{Secret: secret})
	good := must(Mint(secret, "HS256", "u", time.Minute))
	bad := must(Mint([]byte("x"), "HS256", "u", time.Minute))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := v.Verify(good); err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(bad); codeOf(err) != coded.TokenInvalidSignature {
					t.Errorf("worker %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// must is a test helper for Mint.
func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func BenchmarkVerifyHS256(b *testing.B) {
	v := newVerifier(b, Options{Secret: secret})
	tok := must(Mint(secret, "HS256", "user-1", time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) {
	priv := testRSAKey(b)
	v := newVerifier(b, Options{Algorithms: []string{"RS256"}, PublicKey: &priv.PublicKey})
	tok := sign(b, jwt.SigningMethodRS256, priv, good(nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// codeOf returns the code of an *coded.Error in err's chain, or "" when there is none.
func codeOf(err error) string {
	var e *coded.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// A token minted for a deployment that pins "iss" and "aud" passes its verifier; one minted
// without them does not (the demo's /dev/token and `rtserver token` mint with the config's).
func TestMintForIssuerAudience(t *testing.T) {
	v := newVerifier(t, Options{Secret: secret, Issuer: "me", Audience: "you"})
	c, err := v.Verify(must(MintFor(secret, "HS256", "u-1", time.Minute, "me", "you")))
	if err != nil || c.UserID != "u-1" {
		t.Fatalf("MintFor with iss/aud: %+v, %v", c, err)
	}
	if _, err := v.Verify(must(Mint(secret, "HS256", "u-1", time.Minute))); codeOf(err) != coded.TokenInvalid {
		t.Fatalf("without iss/aud: %v", err)
	}
	if _, err := v.Verify(must(MintFor(secret, "HS256", "u-1", time.Minute, "me", "other"))); codeOf(err) != coded.TokenInvalid {
		t.Fatalf("wrong aud: %v", err)
	}
}
