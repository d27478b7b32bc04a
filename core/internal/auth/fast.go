package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The fast path for HMAC tokens.
//
// Every Socket.IO connect verifies a token, and the jwt library's general parsing (the
// header and the claims decoded by reflection into maps and structs, a new HMAC each
// time) was about a fifteenth of the server's CPU per connect. Nearly every token in
// practice has one of a few header texts and a flat claims object, so quickVerify
// checks exactly those itself and answers only when the token is good: anything unusual
// or wrong (another header, an escape in a string, a nested value, a key that only
// matches a claim's name case-insensitively, a bad signature, an expired token) is left
// to the library's path in Verify, which gives the verdict and the reason as before.
//
// The rule that keeps this safe: quickVerify accepts a token only where the library
// accepts it with the same claims (FuzzQuickVerifyAgreesWithLibrary checks it). It reads
// a subset of the JSON the library reads, so it never has to guess how the library
// would read something.

// hmacAlg is one allowed HMAC algorithm: the header texts that name it, and a pool of
// keyed hashes (an HMAC's Reset restores its keyed state, which is cheaper than keying
// a new one).
type hmacAlg struct {
	headers []string // base64url header segments that decode to {"alg": name} with typ JWT or none
	size    int      // signature bytes
	pool    sync.Pool
}

// quickAlgs returns the fast path's algorithms for the allowed HS* list, nil when none is
// allowed.
func quickAlgs(algs []string, secret []byte) []*hmacAlg {
	var out []*hmacAlg
	for _, name := range algs {
		var h func() hash.Hash
		var size int
		switch name {
		case "HS256":
			h, size = sha256.New, sha256.Size
		case "HS384":
			h, size = sha512.New384, sha512.Size384
		case "HS512":
			h, size = sha512.New, sha512.Size
		default:
			continue
		}
		a := &hmacAlg{size: size}
		for _, text := range []string{
			`{"alg":"` + name + `","typ":"JWT"}`,
			`{"typ":"JWT","alg":"` + name + `"}`,
			`{"alg":"` + name + `"}`,
		} {
			a.headers = append(a.headers, base64.RawURLEncoding.EncodeToString([]byte(text)))
		}
		key := secret
		a.pool.New = func() any { return hmac.New(h, key) }
		out = append(out, a)
	}
	return out
}

// maxQuickPayload bounds the claims the fast path decodes on the stack; longer ones take
// the library's path.
const maxQuickPayload = 1024

// quickVerify returns the claims of a good HMAC token of the common shape, or ok false
// when the library's path must decide. token is trimmed and within MaxTokenLength.
func (v *Verifier) quickVerify(token string) (c *Claims, ok bool) {
	if len(v.quick) == 0 {
		return nil, false
	}
	dot1 := strings.IndexByte(token, '.')
	if dot1 < 0 {
		return nil, false
	}
	rest := token[dot1+1:]
	dot2 := strings.IndexByte(rest, '.')
	if dot2 < 0 || strings.IndexByte(rest[dot2+1:], '.') >= 0 {
		return nil, false
	}
	head, payload, sig := token[:dot1], rest[:dot2], rest[dot2+1:]
	var alg *hmacAlg
	for _, a := range v.quick {
		for _, h := range a.headers {
			if head == h {
				alg = a
			}
		}
	}
	if alg == nil {
		return nil, false
	}

	// The signature over header.payload, compared in constant time. One copy of the
	// token serves the HMAC, the signature's and the payload's decoding.
	if base64.RawURLEncoding.DecodedLen(len(sig)) != alg.size ||
		base64.RawURLEncoding.DecodedLen(len(payload)) > maxQuickPayload {
		return nil, false
	}
	tb := []byte(token)
	signed := tb[:dot1+1+dot2]
	var sigBuf, sumBuf [64]byte
	n, err := base64.RawURLEncoding.Decode(sigBuf[:], tb[len(signed)+1:])
	if err != nil || n != alg.size {
		return nil, false
	}
	mac := alg.pool.Get().(hash.Hash)
	mac.Reset()
	mac.Write(signed)
	sum := mac.Sum(sumBuf[:0])
	alg.pool.Put(mac)
	if !hmac.Equal(sigBuf[:n], sum) {
		return nil, false
	}

	var body [maxQuickPayload]byte
	n, err = base64.RawURLEncoding.Decode(body[:], signed[dot1+1:])
	if err != nil {
		return nil, false
	}
	var cl quickClaims
	if !cl.parse(body[:n]) {
		return nil, false
	}
	return v.quickCheck(&cl)
}

// quickCheck applies the library's checks as Verify configures them (exp required, iat
// and nbf not in the future, issuer and audience when set, all with the leeway) to
// decoded claims; any failure is the library's to report.
func (v *Verifier) quickCheck(cl *quickClaims) (*Claims, bool) {
	if !cl.has(seenExp) || !cl.has(seenIat) || !cl.has(seenUserID) {
		return nil, false
	}
	now := v.now()
	// The library compares whole seconds (its NumericDate truncates).
	if !now.Before(time.Unix(cl.expSec, 0).Add(v.leeway)) {
		return nil, false
	}
	if now.Before(time.Unix(cl.iatSec, 0).Add(-v.leeway)) {
		return nil, false
	}
	if cl.has(seenNbf) && now.Before(time.Unix(cl.nbfSec, 0).Add(-v.leeway)) {
		return nil, false
	}
	if v.issuer != "" && cl.iss != v.issuer {
		return nil, false
	}
	if v.audience != "" && !cl.audHas(v.audience) {
		return nil, false
	}
	if strings.TrimSpace(cl.userID) == "" || CheckUserID(cl.userID) != nil {
		return nil, false
	}
	return &Claims{UserID: cl.userID, ExpiresAt: cl.exp, IssuedAt: cl.iat}, true
}

// Bits of quickClaims.seen, in the order of claimNames.
const (
	seenUserID = 1 << iota
	seenExp
	seenIat
	seenNbf
	seenIss
	seenSub
	seenJti
	seenAud
)

// quickClaims is what the fast path reads from a claims object; the strings it keeps are
// copies (the payload is decoded into a buffer on the stack).
type quickClaims struct {
	seen                   int
	userID, iss            string
	aud                    []string
	exp, iat               time.Time
	expSec, iatSec, nbfSec int64
}

func (c *quickClaims) has(bit int) bool { return c.seen&bit != 0 }

func (c *quickClaims) audHas(want string) bool {
	// The library wants a non-empty aud that contains the expected audience.
	if len(c.aud) == 0 || len(c.aud) == 1 && c.aud[0] == "" {
		return false
	}
	for _, a := range c.aud {
		if a == want {
			return true
		}
	}
	return false
}

// claimNames are the keys the library's decoding gives meaning to: the claims struct's
// fields, which encoding/json matches case-insensitively.
// Their order is that of the seen bits.
var claimNames = [...]string{"userId", "exp", "iat", "nbf", "iss", "sub", "jti", "aud"}

// claimBit is key's seen bit, 0 for a key that is not exactly a claim's name.
func claimBit(key []byte) int {
	for i, n := range claimNames {
		if string(key) == n {
			return 1 << i
		}
	}
	return 0
}

// parse reads a flat JSON object of the common shape, and reports false for anything
// else: invalid JSON, an escape in any string, invalid UTF-8 in a key, a nested value
// under a key, a key seen twice, a key that is a claim's name only case-insensitively, a
// known claim of the wrong type, null for a known claim.
func (c *quickClaims) parse(b []byte) bool {
	s := scanner{b: b}
	s.space()
	if !s.take('{') {
		return false
	}
	s.space()
	if s.take('}') {
		return s.end()
	}
	for {
		key, ok := s.str()
		if !ok {
			return false
		}
		s.space()
		if !s.take(':') {
			return false
		}
		s.space()
		if !c.value(&s, key) {
			return false
		}
		s.space()
		if s.take('}') {
			return s.end()
		}
		if !s.take(',') {
			return false
		}
		s.space()
	}
}

// value reads the value of key.
func (c *quickClaims) value(s *scanner, key []byte) bool {
	bit := claimBit(key)
	if bit == 0 {
		// Another claim: the library ignores it unless encoding/json would match it to a
		// field, which it does case-insensitively and with Unicode folding.
		if !isASCII(key) {
			return false
		}
		for _, n := range claimNames {
			if strings.EqualFold(string(key), n) {
				return false
			}
		}
		return s.skipScalar()
	}
	if c.seen&bit != 0 {
		return false
	}
	c.seen |= bit
	switch bit {
	case seenUserID:
		v, ok := s.str()
		if !ok || !utf8.Valid(v) {
			return false
		}
		c.userID = string(v)
		return true
	case seenExp, seenIat, seenNbf:
		f, ok := s.date()
		if !ok {
			return false
		}
		sec, frac := math.Modf(f)
		switch bit {
		case seenExp:
			c.exp, c.expSec = time.Unix(int64(sec), int64(frac*1e9)), int64(sec)
		case seenIat:
			c.iat, c.iatSec = time.Unix(int64(sec), int64(frac*1e9)), int64(sec)
		default:
			c.nbfSec = int64(sec)
		}
		return true
	case seenIss, seenSub, seenJti:
		v, ok := s.str()
		if !ok || !utf8.Valid(v) {
			return false
		}
		if bit == seenIss {
			c.iss = string(v)
		}
		return true
	default: // aud: a string or an array of strings
		if s.peek() != '[' {
			v, ok := s.str()
			if !ok || !utf8.Valid(v) {
				return false
			}
			c.aud = append(c.aud, string(v))
			return true
		}
		s.take('[')
		s.space()
		if s.take(']') {
			c.aud = []string{}
			return true
		}
		for {
			v, ok := s.str()
			if !ok || !utf8.Valid(v) {
				return false
			}
			c.aud = append(c.aud, string(v))
			s.space()
			if s.take(']') {
				return true
			}
			if !s.take(',') {
				return false
			}
			s.space()
		}
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// scanner walks a JSON text; every method reports false rather than guessing.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) take(c byte) bool {
	if s.peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string without escapes or control characters and returns its bytes.
func (s *scanner) str() ([]byte, bool) {
	if !s.take('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	s.take('-')
	switch {
	case s.take('0'):
	case s.digits() == 0:
		return nil, false
	}
	if s.take('.') && s.digits() == 0 {
		return nil, false
	}
	if s.take('e') || s.take('E') {
		if !s.take('+') {
			s.take('-')
		}
		if s.digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// date reads exp, iat or nbf as numericDate does: a JSON number of seconds within [0,
// maxNumericDate].
func (s *scanner) date() (float64, bool) {
	text, ok := s.number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return 0, false
	}
	return f, true
}

// skipScalar passes over a string, number, true, false or null.
func (s *scanner) skipScalar() bool {
	switch s.peek() {
	case '"':
		_, ok := s.str()
		return ok
	case 't':
		return s.word("true")
	case 'f':
		return s.word("false")
	case 'n':
		return s.word("null")
	}
	_, ok := s.number()
	return ok
}

func (s *scanner) word(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}
