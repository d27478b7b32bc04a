// Package auth verifies the JSON Web Tokens that Socket.IO clients send in the CONNECT
// packet's auth.token. The accepted algorithms are pinned by configuration, so a token
// cannot choose its own (alg "none", or an HMAC token signed with a public RSA key).
package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtserver/rtserver/core/internal/coded"
)

const (
	claimUserID         = "userId"
	supportedAlgorithms = "HS256, HS384, HS512, RS256, ES256"
)

const (
	// MaxUserIDLength bounds a userId in bytes, wherever it comes from: the token, the
	// register event, the HTTP API. It ends up in room names, logs and plugin requests.
	MaxUserIDLength = 256
	// MaxTokenLength bounds a token in bytes; a longer one is refused before any
	// decoding or signature work. Real tokens are well under 2 KB.
	MaxTokenLength = 8192
	// maxNumericDate is 9999-12-31T23:59:59Z: exp, iat and nbf beyond it (or negative)
	// are refused instead of overflowing time arithmetic.
	maxNumericDate = 253402300799
	// maxAlgInMessage bounds how much of a refused alg header is echoed back.
	maxAlgInMessage = 32
)

// CheckUserID reports whether id is an acceptable user id: not blank, at most
// MaxUserIDLength bytes, valid UTF-8 (U+FFFD, which JSON decoding puts in place of invalid
// bytes, counts as invalid), and printable characters only (letters, marks, digits,
// punctuation, symbols and the ASCII space; no control or format characters). The error
// says which rule failed and is safe to show the client.
func CheckUserID(id string) error {
	if strings.TrimSpace(id) == "" {
		return errors.New("userId must be a non-empty string")
	}
	if len(id) > MaxUserIDLength {
		return fmt.Errorf("userId must be at most %d bytes", MaxUserIDLength)
	}
	for _, r := range id {
		if r == utf8.RuneError {
			return errors.New("userId must be valid UTF-8")
		}
		if !unicode.IsPrint(r) {
			return errors.New("userId must contain only printable characters")
		}
	}
	return nil
}

// refuse returns a refused token as a *coded.Error with one of the coded.Token* codes.
// msg never echoes the token; cause is the jwt library's error, kept for logs.
func refuse(code, msg string, cause error) *coded.Error {
	return &coded.Error{Code: code, Message: msg, Cause: cause}
}

// Claims is what the server keeps from a verified token.
type Claims struct {
	UserID    string
	ExpiresAt time.Time
	IssuedAt  time.Time
}

// Options configures a Verifier.
type Options struct {
	Secret     []byte   // HMAC secret, needed when an HS* algorithm is allowed
	Algorithms []string // allowed: HS256 HS384 HS512 RS256 ES256; empty means HS256
	// PublicKey (an *rsa.PublicKey or *ecdsa.PublicKey) or PublicKeyFile (PEM: a public
	// key or a certificate) is needed when RS256 or ES256 is allowed; PublicKey wins.
	PublicKey     crypto.PublicKey
	PublicKeyFile string
	Issuer        string        // required "iss" when set
	Audience      string        // required in "aud" when set
	Leeway        time.Duration // clock skew allowed on exp, nbf and iat
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	algs   []string
	secret []byte
	rsaKey *rsa.PublicKey
	ecKey  *ecdsa.PublicKey
	parser *jwt.Parser

	// What the fast path (fast.go) checks itself, as the parser is configured.
	quick            []*hmacAlg
	issuer, audience string
	leeway           time.Duration
	now              func() time.Time
}

// NewVerifier checks the options (known algorithms, a secret for HS*, a key of the right
// kind for RS256/ES256, read from PublicKeyFile when given) and returns a Verifier.
func NewVerifier(o Options) (*Verifier, error) {
	algs := slices.Clone(o.Algorithms)
	if len(algs) == 0 {
		algs = []string{"HS256"}
	}
	v := &Verifier{algs: algs}
	for _, a := range algs {
		switch a {
		case "HS256", "HS384", "HS512":
			if len(o.Secret) == 0 {
				return nil, fmt.Errorf("auth: algorithm %s needs a secret", a)
			}
			v.secret = slices.Clone(o.Secret)
		case "RS256", "ES256":
			// checked below, once the key is known
		default:
			return nil, fmt.Errorf("auth: algorithm %q is not supported (use %s)", a, supportedAlgorithms)
		}
	}
	if slices.Contains(algs, "RS256") || slices.Contains(algs, "ES256") {
		key := o.PublicKey
		if key == nil {
			if o.PublicKeyFile == "" {
				return nil, errors.New("auth: RS256/ES256 need a public key file")
			}
			var err error
			if key, err = LoadPublicKey(o.PublicKeyFile); err != nil {
				return nil, err
			}
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
			v.rsaKey = k
		case *ecdsa.PublicKey:
			v.ecKey = k
		default:
			return nil, fmt.Errorf("auth: public key of type %T is neither RSA nor ECDSA", key)
		}
		if slices.Contains(algs, "RS256") && v.rsaKey == nil {
			return nil, errors.New("auth: RS256 needs an RSA public key")
		}
		if slices.Contains(algs, "ES256") && (v.ecKey == nil || v.ecKey.Curve != elliptic.P256()) {
			return nil, errors.New("auth: ES256 needs an ECDSA P-256 public key")
		}
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	v.parser = jwt.NewParser(opts...)
	if v.secret != nil {
		v.quick = quickAlgs(algs, v.secret)
	}
	v.issuer, v.audience, v.leeway, v.now = o.Issuer, o.Audience, o.Leeway, o.Now
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// LoadPublicKey reads a PEM file holding a PKIX public key ("PUBLIC KEY"), a PKCS#1 RSA
// public key ("RSA PUBLIC KEY") or a certificate, and returns its public key.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read public key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("auth: %s holds no PEM block", path)
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: parse public key %s: %w", path, err)
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: parse public key %s: %w", path, err)
		}
		return k, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: parse certificate %s: %w", path, err)
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("auth: %s holds a %q PEM block, not a public key", path, block.Type)
}

// tokenClaims decodes the payload. userId is read as any so that a non-string value is
// refused as a bad claim rather than as an undecodable token. exp, iat and nbf shadow the
// embedded RegisteredClaims' fields (the shallower JSON field wins) so that they are
// decoded strictly; the Get* methods below hand them to the parser's validation.
type tokenClaims struct {
	UserID    any          `json:"userId"`
	ExpiresAt *numericDate `json:"exp"`
	IssuedAt  *numericDate `json:"iat"`
	NotBefore *numericDate `json:"nbf"`
	jwt.RegisteredClaims
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }

// numericDate is a JWT NumericDate that must be a JSON number within [0,
// maxNumericDate]. jwt.NumericDate alone also takes a numeric string ("9999999999"),
// which RFC 7519 does not allow, and overflows on huge values.
type numericDate struct{ t time.Time }

// errClaimNotNumber is returned while decoding exp, iat or nbf; the parser wraps it in
// jwt.ErrTokenMalformed.
var errClaimNotNumber = errors.New("exp, iat and nbf must be JSON numbers of seconds between 0 and 253402300799")

func (d *numericDate) UnmarshalJSON(b []byte) error {
	// A JSON number starts with a digit or '-'; strings, objects, arrays and booleans
	// do not. (null never gets here: it leaves the pointer nil.)
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errClaimNotNumber
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return errClaimNotNumber
	}
	sec, frac := math.Modf(f)
	d.t = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

func (d *numericDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return jwt.NewNumericDate(d.t)
}

// key returns the verification key for the token's algorithm. The parser has already
// refused algorithms outside the allowed list; the type switch is a second lock against
// key confusion (an HMAC token must never be checked against a public key).
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.secret != nil {
			return v.secret, nil
		}
	case *jwt.SigningMethodRSA:
		if v.rsaKey != nil {
			return v.rsaKey, nil
		}
	case *jwt.SigningMethodECDSA:
		if v.ecKey != nil {
			return v.ecKey, nil
		}
	}
	return nil, errAlg
}

var errAlg = errors.New("algorithm not allowed")

// Verify checks the token's algorithm, signature and claims, in that order, and returns its
// claims, or a *coded.Error whose Code (coded.Token*) says why it was refused.
func (v *Verifier) Verify(token string) (*Claims, error) {
	token = strings.TrimSpace(token)
	// "Bearer x" is what an HTTP-minded client often sends; accept it.
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	if token == "" {
		return nil, refuse(coded.TokenMissing, "authentication token is missing", nil)
	}
	if len(token) > MaxTokenLength {
		return nil, refuse(coded.TokenMalformed, fmt.Sprintf("token is longer than %d bytes", MaxTokenLength), nil)
	}
	if c, ok := v.quickVerify(token); ok {
		return c, nil
	}
	return v.libraryVerify(token)
}

// libraryVerify is Verify through the jwt library: every token the fast path does not
// accept, and so every refusal, comes here.
func (v *Verifier) libraryVerify(token string) (*Claims, error) {
	var tc tokenClaims
	t, err := v.parser.ParseWithClaims(token, &tc, v.key)
	if err != nil {
		return nil, v.classify(t, &tc, err)
	}

	uid, ok := tc.UserID.(string)
	switch {
	case tc.UserID == nil:
		return nil, refuse(coded.TokenMissingClaim, "token has no userId claim", nil)
	case !ok || strings.TrimSpace(uid) == "":
		return nil, refuse(coded.TokenMissingClaim, "token userId claim must be a non-empty string", nil)
	case tc.IssuedAt == nil:
		return nil, refuse(coded.TokenMissingClaim, "token has no iat claim", nil)
	}
	if err := CheckUserID(uid); err != nil {
		return nil, refuse(coded.TokenInvalid, "token "+err.Error(), err)
	}
	// The parser requires exp, so ExpiresAt is set here.
	return &Claims{UserID: uid, ExpiresAt: tc.ExpiresAt.t, IssuedAt: tc.IssuedAt.t}, nil
}

func (v *Verifier) classify(t *jwt.Token, tc *tokenClaims, err error) *coded.Error {
	algRefused := errors.Is(err, errAlg) || errors.Is(err, jwt.ErrTokenUnverifiable) ||
		(t != nil && t.Method != nil && !slices.Contains(v.algs, t.Method.Alg()))
	switch {
	case errors.Is(err, errClaimNotNumber):
		return refuse(coded.TokenMalformed, "token is malformed: "+errClaimNotNumber.Error(), err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(coded.TokenMalformed, "token is malformed", err)
	case algRefused:
		var alg string
		if t != nil {
			alg, _ = t.Header["alg"].(string)
		}
		if len(alg) > maxAlgInMessage {
			alg = alg[:maxAlgInMessage] + "..."
		}
		return refuse(coded.TokenAlgNotAllowed, fmt.Sprintf("token algorithm %q is not allowed", alg), err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(coded.TokenInvalidSignature, "token signature is invalid", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && tc.ExpiresAt == nil:
		return refuse(coded.TokenMissingClaim, "token has no exp claim", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && tc.Issuer == "":
		return refuse(coded.TokenInvalid, "token has no issuer (iss)", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && len(tc.Audience) == 0:
		return refuse(coded.TokenInvalid, "token has no audience (aud)", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse(coded.TokenExpired, "token has expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refuse(coded.TokenInvalid, "token is not valid yet (nbf)", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refuse(coded.TokenInvalid, "token is issued in the future (iat)", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return refuse(coded.TokenInvalid, "token issuer (iss) is not accepted", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refuse(coded.TokenInvalid, "token audience (aud) is not accepted", err)
	}
	return refuse(coded.TokenInvalid, "token is invalid", err)
}

// Mint signs a token for userID valid for ttl (a ttl <= 0 yields an already expired token,
// which tests use). Only HS256, HS384 and HS512 are supported; alg "" means HS256.
func Mint(secret []byte, alg, userID string, ttl time.Duration) (string, error) {
	return MintFor(secret, alg, userID, ttl, "", "")
}

// MintFor is Mint with the "iss" and "aud" claims a verifier configured with
// auth.issuer and auth.audience requires; an empty one is left out.
func MintFor(secret []byte, alg, userID string, ttl time.Duration, issuer, audience string) (string, error) {
	if alg == "" {
		alg = "HS256"
	}
	var m jwt.SigningMethod
	switch alg {
	case "HS256":
		m = jwt.SigningMethodHS256
	case "HS384":
		m = jwt.SigningMethodHS384
	case "HS512":
		m = jwt.SigningMethodHS512
	default:
		return "", fmt.Errorf("auth: mint: algorithm %q is not supported (HS256, HS384, HS512)", alg)
	}
	if len(secret) == 0 {
		return "", errors.New("auth: mint: empty secret")
	}
	// A token the verifier would refuse is no use to anyone.
	if err := CheckUserID(userID); err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	now := time.Now()
	claims := jwt.MapClaims{
		claimUserID: userID,
		"iat":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
	}
	if issuer != "" {
		claims["iss"] = issuer
	}
	if audience != "" {
		claims["aud"] = audience
	}
	s, err := jwt.NewWithClaims(m, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return s, nil
}
