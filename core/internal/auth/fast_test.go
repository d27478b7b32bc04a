package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"
)

// hs256 signs header and claims texts as they are, with secret.
func hs256(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(header)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signing))
	return signing + "." + enc(m.Sum(nil))
}

const hsHeader = `{"alg":"HS256","typ":"JWT"}`

func TestQuickVerifyTakesCommonTokens(t *testing.T) {
	now := time.Now().Unix()
	v := newVerifier(t, Options{Secret: secret, Algorithms: []string{"HS256", "HS384", "HS512"}})
	va := newVerifier(t, Options{Secret: secret, Issuer: "issuer-1", Audience: "app", Leeway: time.Minute})
	cases := []struct {
		name string
		v    *Verifier
		tok  string
	}{
		{"Mint HS256", v, must(Mint(secret, "HS256", "user-1", time.Hour))},
		{"Mint HS384", v, must(Mint(secret, "HS384", "user-1", time.Hour))},
		{"Mint HS512", v, must(Mint(secret, "HS512", "user-1", time.Hour))},
		{"typ first, spaces, other claims", v, hs256(`{"typ":"JWT","alg":"HS256"}`,
			fmt.Sprintf(` { "userId" : "ü-2", "name":"x y", "admin":true, "n":-1.5e3, "z":null, "iat":%d.25, "exp":%d, "nbf":%d, "sub":"s", "jti":"j" } `, now, now+60, now))},
		{"no typ", v, hs256(`{"alg":"HS256"}`, fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d}`, now, now+60))},
		{"issuer and audience", va, must(MintFor(secret, "HS256", "user-1", time.Hour, "issuer-1", "app"))},
		{"audience in a list", va, hs256(hsHeader, fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d,"iss":"issuer-1","aud":["x","app"]}`, now, now+60))},
		{"within the leeway", va, hs256(hsHeader, fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d,"iss":"issuer-1","aud":"app"}`, now+30, now-30))},
	}
	for _, c := range cases {
		got, ok := c.v.quickVerify(c.tok)
		if !ok {
			t.Errorf("%s: not taken by the fast path", c.name)
			continue
		}
		want, err := c.v.libraryVerify(c.tok)
		if err != nil {
			t.Errorf("%s: the library refuses what the fast path took: %v", c.name, err)
			continue
		}
		if *got != *want {
			t.Errorf("%s: fast path %+v, library %+v", c.name, *got, *want)
		}
	}
}

// Tokens the fast path must leave to the library; Verify's verdict is the library's.
func TestQuickVerifyLeavesTheRestToTheLibrary(t *testing.T) {
	now := time.Now().Unix()
	claims := func(extra string) string {
		return fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d%s}`, now, now+60, extra)
	}
	v := newVerifier(t, Options{Secret: secret})
	va := newVerifier(t, Options{Secret: secret, Issuer: "issuer-1", Audience: "app"})
	v384 := newVerifier(t, Options{Secret: secret, Algorithms: []string{"HS384"}})
	good := hs256(hsHeader, claims(""))
	cases := []struct {
		name string
		v    *Verifier
		tok  string
		ok   bool // the library's verdict
	}{
		{"bad signature", v, good[:len(good)-2] + "AA", false},
		{"other secret", v, must(Mint([]byte("another-secret-of-a-decent-length"), "HS256", "u", time.Hour)), false},
		{"alg not allowed", v384, good, false},
		{"alg none", v, raw(`{"alg":"none","typ":"JWT"}`, claims(""), ""), false},
		{"header with kid", v, hs256(`{"alg":"HS256","typ":"JWT","kid":"k1"}`, claims("")), true},
		{"expired", v, hs256(hsHeader, fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d}`, now-120, now-60)), false},
		{"no exp", v, hs256(hsHeader, fmt.Sprintf(`{"userId":"u","iat":%d}`, now)), false},
		{"no iat", v, hs256(hsHeader, fmt.Sprintf(`{"userId":"u","exp":%d}`, now+60)), false},
		{"nbf ahead", v, hs256(hsHeader, claims(fmt.Sprintf(`,"nbf":%d`, now+60))), false},
		{"iat ahead", v, hs256(hsHeader, fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d}`, now+60, now+120)), false},
		{"exp as a string", v, hs256(hsHeader, fmt.Sprintf(`{"userId":"u","iat":%d,"exp":"%d"}`, now, now+60)), false},
		{"exp twice, the last expired", v, hs256(hsHeader, claims(fmt.Sprintf(`,"exp":%d`, now-60))), false},
		{"EXP overriding exp", v, hs256(hsHeader, claims(fmt.Sprintf(`,"EXP":%d`, now-60))), false},
		{"Unicode-folded userId key", v, hs256(hsHeader, claims(`,"uſerId":7`)), false},
		{"escaped userId", v, hs256(hsHeader, fmt.Sprintf(`{"userId":"\u0061lice","iat":%d,"exp":%d}`, now, now+60)), true},
		{"userId not a string", v, hs256(hsHeader, fmt.Sprintf(`{"userId":7,"iat":%d,"exp":%d}`, now, now+60)), false},
		{"blank userId", v, hs256(hsHeader, fmt.Sprintf(`{"userId":"  ","iat":%d,"exp":%d}`, now, now+60)), false},
		{"nested claim", v, hs256(hsHeader, claims(`,"roles":["a","b"],"meta":{"x":1}`)), true},
		{"aud a number", v, hs256(hsHeader, claims(`,"aud":5`)), false},
		{"iss a number", v, hs256(hsHeader, claims(`,"iss":5`)), false},
		{"trailing text", v, hs256(hsHeader, claims("")+"x"), false},
		{"leading zero", v, hs256(hsHeader, claims(`,"n":01`)), false},
		{"wrong issuer", va, hs256(hsHeader, claims(`,"iss":"other","aud":"app"`)), false},
		{"wrong audience", va, hs256(hsHeader, claims(`,"iss":"issuer-1","aud":["x"]`)), false},
		{"no audience", va, hs256(hsHeader, claims(`,"iss":"issuer-1"`)), false},
		{"four segments", v, good + ".x", false},
		{"padded signature", v, good + "=", false},
	}
	for _, c := range cases {
		if _, ok := c.v.quickVerify(c.tok); ok {
			t.Errorf("%s: taken by the fast path", c.name)
		}
		_, err := c.v.Verify(c.tok)
		if (err == nil) != c.ok {
			t.Errorf("%s: Verify error %v, want accepted %v", c.name, err, c.ok)
		}
		if _, lerr := c.v.libraryVerify(c.tok); (lerr == nil) != (err == nil) || codeOf(lerr) != codeOf(err) {
			t.Errorf("%s: Verify %v, library %v", c.name, err, lerr)
		}
	}
}

// FuzzQuickVerifyAgreesWithLibrary signs arbitrary claims and checks that whatever the
// fast path accepts, the library accepts with the same claims.
func FuzzQuickVerifyAgreesWithLibrary(f *testing.F) {
	now := time.Now().Unix()
	for _, s := range []string{
		fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d}`, now, now+60),
		fmt.Sprintf(`{"userId":"u","iat":%d.5,"exp":%d.999,"nbf":%d,"iss":"issuer-1","aud":["app"]}`, now, now+60, now-1),
		fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%de0,"Exp":1,"x":[1]}`, now, now+60),
		fmt.Sprintf(`{"userId":"a\"b","iat":%d,"exp":%d,"aud":"app","iss":"issuer-1"}`, now, now+60),
		fmt.Sprintf(`{"userId":"u","iat":%d,"exp":1e400}`, now),
		fmt.Sprintf(`{"userId":"u","iat":%d,"exp":%d,"k":"\xff"}`, now, now+60),
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	vs := []*Verifier{
		newVerifier(f, Options{Secret: secret}),
		newVerifier(f, Options{Secret: secret, Issuer: "issuer-1", Audience: "app", Leeway: time.Minute}),
	}
	f.Fuzz(func(t *testing.T, claims string, which uint8) {
		v := vs[int(which)%len(vs)]
		tok := hs256(hsHeader, claims)
		got, ok := v.quickVerify(tok)
		if !ok {
			return
		}
		want, err := v.libraryVerify(tok)
		if err != nil {
			t.Fatalf("fast path took %q, the library refuses it: %v", claims, err)
		}
		if *got != *want {
			t.Fatalf("%q: fast path %+v, library %+v", claims, *got, *want)
		}
	})
}

func BenchmarkVerifyHS256Library(b *testing.B) {
	v := newVerifier(b, Options{Secret: secret})
	tok := must(Mint(secret, "HS256", "user-1", time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.libraryVerify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
