package httpapi

import (
	"container/heap"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signature versions (X-Signature-Version).
const (
	SignatureV1 = "v1" // HMAC-SHA256(secret, METHOD+PATH+TIMESTAMP+NONCE)
	SignatureV2 = "v2" // HMAC-SHA256(secret, METHOD+PATH+TIMESTAMP+NONCE+hex(SHA-256(body)))
)

const (
	defaultSigningWindow = 5 * time.Minute
	maxNonceLen          = 128
	maxTimestampDigits   = 16
	maxVersionLen        = 8
	defaultMaxNonces     = 100_000
)

// Signing configures request signing (SPEC "HTTP Authentication").
type Signing struct {
	// Required makes every /api route demand a signature; otherwise only RequiredRoutes
	// do. A signature that is present is verified on every route regardless.
	Required bool
	// RequiredRoutes are route paths ("/api/push") that demand a signature.
	RequiredRoutes []string
	// Window is how far X-Request-Timestamp may be from now, either way; 5m when zero.
	// A nonce is remembered until its timestamp leaves the window.
	Window time.Duration
	// MinVersion "v2" refuses v1 signatures; "" or "v1" accepts both.
	MinVersion string
	// MaxNonces bounds the replay store; 100,000 when zero. When full, the nonce closest
	// to expiry is forgotten first, and from then on a request that would have expired no
	// later than it is refused (TIMESTAMP_INVALID): its nonce can no longer be checked.
	MaxNonces int
}

// sigHeaders are the parsed signing headers of one request.
type sigHeaders struct {
	timestamp    int64  // ms since the epoch
	timestampRaw string // exactly as sent: it is part of the signed message
	nonce        string
	version      string
	mac          []byte
}

// parseSigHeaders checks the shape of the signing headers. sig is known to be non-empty.
// A missing version means v1, as the SPEC's first clients sent none.
func parseSigHeaders(ts, nonce, version, sig string) (sigHeaders, *apiError) {
	var h sigHeaders
	if ts == "" || nonce == "" {
		return h, errUnauthorized(CodeSignatureMissing, "Missing X-Request-Timestamp or X-Request-Nonce header")
	}
	if len(version) > maxVersionLen {
		return h, errUnauthorized(CodeSignatureVersionUnsupported, "Unsupported signature version")
	}
	switch strings.ToLower(strings.TrimSpace(version)) {
	case "", SignatureV1:
		h.version = SignatureV1
	case SignatureV2:
		h.version = SignatureV2
	default:
		return h, errUnauthorized(CodeSignatureVersionUnsupported, "Unsupported signature version")
	}
	if len(ts) > maxTimestampDigits || !allDigits(ts) {
		return h, errUnauthorized(CodeTimestampInvalid, "Invalid request timestamp")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return h, errUnauthorized(CodeTimestampInvalid, "Invalid request timestamp")
	}
	if len(nonce) > maxNonceLen || !printableASCII(nonce) {
		return h, errUnauthorized(CodeSignatureInvalid, fmt.Sprintf("Invalid nonce: 1 to %d printable ASCII characters", maxNonceLen))
	}
	// A SHA-256 MAC is 64 hex digits; anything else cannot match.
	if len(sig) != 2*sha256.Size {
		return h, errUnauthorized(CodeSignatureInvalid, "Invalid signature")
	}
	mac, err := hex.DecodeString(sig)
	if err != nil {
		return h, errUnauthorized(CodeSignatureInvalid, "Invalid signature")
	}
	h.timestamp, h.timestampRaw, h.nonce, h.mac = n, ts, nonce, mac
	return h, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// expectedMAC computes the signature the client should have sent.
func expectedMAC(secret []byte, version, method, path, ts, nonce string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(method))
	m.Write([]byte(path))
	m.Write([]byte(ts))
	m.Write([]byte(nonce))
	if version == SignatureV2 {
		sum := sha256.Sum256(body)
		var hx [2 * sha256.Size]byte
		hex.Encode(hx[:], sum[:])
		m.Write(hx[:])
	}
	return m.Sum(nil)
}

// Sign returns the lowercase hex signature a client sends in X-Signature; body is used
// by v2 only. It is exported for clients and tests written in Go.
func Sign(secret, version, method, path, timestamp, nonce string, body []byte) string {
	return hex.EncodeToString(expectedMAC([]byte(secret), version, method, path, timestamp, nonce, body))
}

// nonceStore remembers (key, nonce) pairs until their timestamp leaves the window, so a
// captured request cannot be replayed while it would still be accepted. It is bounded:
// entries live in a min-heap by expiry, pruned on every insert; when full, the entry
// closest to expiry is evicted and floor rises to its expiry, so that no request whose
// nonce may have been forgotten (expiry <= floor) is accepted again. Under that pressure
// the store fails closed for old timestamps; fresh ones are not affected.
type nonceStore struct {
	mu    sync.Mutex
	max   int
	seen  map[string]int64 // key -> expiry (unix ms)
	h     nonceHeap
	floor int64 // highest expiry evicted before its time (unix ms)
}

type nonceEntry struct {
	key    string
	expiry int64
}

type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].expiry < h[j].expiry }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newNonceStore(max int) *nonceStore {
	if max <= 0 {
		max = defaultMaxNonces
	}
	return &nonceStore{max: max, seen: map[string]int64{}}
}

// nonceResult is what add found.
type nonceResult int

const (
	nonceNew         nonceResult = iota
	nonceReused                  // seen within its window
	nonceUncheckable             // expires no later than an evicted entry: it may have been seen
)

// add records the nonce when it is new and says what it found. expiry and now are unix ms.
func (s *nonceStore) add(keyName, nonce string, expiry, now int64) nonceResult {
	k := keyName + "\x00" + nonce // copies: the inputs may point into reused request buffers
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.h) > 0 && s.h[0].expiry <= now {
		e := heap.Pop(&s.h).(nonceEntry)
		delete(s.seen, e.key)
	}
	if exp, ok := s.seen[k]; ok && exp > now {
		return nonceReused
	}
	if expiry <= s.floor {
		return nonceUncheckable
	}
	for len(s.h) >= s.max {
		e := heap.Pop(&s.h).(nonceEntry)
		delete(s.seen, e.key)
		s.floor = max(s.floor, e.expiry)
	}
	s.seen[k] = expiry
	heap.Push(&s.h, nonceEntry{key: k, expiry: expiry})
	return nonceNew
}

func (s *nonceStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.h)
}
