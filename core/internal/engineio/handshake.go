package engineio

import (
	"crypto/tls"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// Handshake is what a session keeps of its handshake request for its whole life: the
// peer's address, the Host, the protocol, the URL and the headers, packed into one string.
// Keeping the *http.Request itself held its header map, its URL and the parser's copies,
// about 1.2 KB per idle session, for a few readers (the Socket.IO handshake, the admin
// UI) that look at it once or twice; they rebuild what they read on demand instead.
//
// Only the URL's userinfo is not kept: a request target never carries one from a browser
// or a Socket.IO client, and no reader looks at it. The zero Handshake is that of no
// request: empty header and query, and a nil Request.
type Handshake struct {
	packed string               // fields in hsField order, then name/value pairs
	tls    *tls.ConnectionState // nil unless the handshake came over TLS (net/http only)
}

// Fixed fields of Handshake.packed, each a uvarint length and the bytes, in this order;
// the header's name/value pairs follow, the values of one name contiguous and in order.
const (
	hsAddr = iota
	hsHost
	hsProto
	hsScheme
	hsOpaque
	hsURLHost
	hsPath
	hsRawPath
	hsRawQuery
	hsFlags // "q" when the URL has ForceQuery
	hsFixed
)

// newHandshake copies what Handshake keeps of r into one allocation.
func newHandshake(r *http.Request) Handshake {
	u := r.URL
	if u == nil {
		u = &url.URL{}
	}
	flags := ""
	if u.ForceQuery {
		flags = "q"
	}
	fixed := [hsFixed]string{
		hsAddr: r.RemoteAddr, hsHost: r.Host, hsProto: r.Proto,
		hsScheme: u.Scheme, hsOpaque: u.Opaque, hsURLHost: u.Host,
		hsPath: u.Path, hsRawPath: u.RawPath, hsRawQuery: u.RawQuery, hsFlags: flags,
	}
	n := 0
	for _, f := range fixed {
		n += fieldLen(f)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += fieldLen(k) + fieldLen(v)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fixed {
		putField(&b, f)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			putField(&b, k)
			putField(&b, v)
		}
	}
	return Handshake{packed: b.String(), tls: r.TLS}
}

func fieldLen(s string) int {
	n := 1
	for l := len(s); l >= 0x80; l >>= 7 {
		n++
	}
	return n + len(s)
}

func putField(b *strings.Builder, s string) {
	l := uint(len(s))
	for l >= 0x80 {
		b.WriteByte(byte(l) | 0x80)
		l >>= 7
	}
	b.WriteByte(byte(l))
	b.WriteString(s)
}

// nextField splits the first field off s; ok is false at the end. The packed string is
// only ever written by newHandshake, so it is well formed.
func nextField(s string) (field, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	var l, shift uint
	i := 0
	for {
		c := s[i]
		i++
		l |= uint(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
	}
	return s[i : i+int(l)], s[i+int(l):], true
}

// fields returns the fixed fields and the packed header pairs.
func (h Handshake) fields() (f [hsFixed]string, headers string) {
	s := h.packed
	for i := range f {
		f[i], s, _ = nextField(s)
	}
	return f, s
}

// IsZero reports whether h holds no request.
func (h Handshake) IsZero() bool { return h.packed == "" }

// RemoteAddr returns the ip:port of the peer that made the handshake.
func (h Handshake) RemoteAddr() string {
	a, _, _ := nextField(h.packed)
	return a
}

// Secure reports whether the handshake came over TLS.
func (h Handshake) Secure() bool { return h.tls != nil }

// Header returns a new copy of the handshake's headers (never nil).
func (h Handshake) Header() http.Header {
	_, s := h.fields()
	pairs := 0
	for rest := s; rest != ""; pairs++ {
		_, rest, _ = nextField(rest)
		_, rest, _ = nextField(rest)
	}
	out := make(http.Header, pairs)
	if pairs == 0 {
		return out
	}
	// One backing array for every value; the values of a name are contiguous.
	vals := make([]string, pairs)
	i, start, name := 0, 0, ""
	for s != "" {
		var k, v string
		k, s, _ = nextField(s)
		v, s, _ = nextField(s)
		if i > 0 && k != name {
			out[name] = vals[start:i:i]
			start = i
		}
		name = k
		vals[i] = v
		i++
	}
	out[name] = vals[start:i:i]
	return out
}

// Values returns the values of the header name (canonicalized as http.Header.Values does),
// nil when there is none. It builds no map.
func (h Handshake) Values(name string) []string {
	name = textproto.CanonicalMIMEHeaderKey(name)
	_, s := h.fields()
	var out []string
	for s != "" {
		var k, v string
		k, s, _ = nextField(s)
		v, s, _ = nextField(s)
		if k == name {
			out = append(out, v)
		}
	}
	return out
}

// Get returns the first value of the header name, or "".
func (h Handshake) Get(name string) string {
	if v := h.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// URL returns a new copy of the handshake request's URL (nil for the zero Handshake).
func (h Handshake) URL() *url.URL {
	if h.IsZero() {
		return nil
	}
	f, _ := h.fields()
	return &url.URL{
		Scheme: f[hsScheme], Opaque: f[hsOpaque], Host: f[hsURLHost],
		Path: f[hsPath], RawPath: f[hsRawPath], RawQuery: f[hsRawQuery],
		ForceQuery: f[hsFlags] == "q",
	}
}

// Query returns the handshake's query parameters, parsed as url.URL.Query does (never nil).
func (h Handshake) Query() url.Values {
	f, _ := h.fields()
	v, _ := url.ParseQuery(f[hsRawQuery])
	return v
}

// Request rebuilds the handshake request (a new one on every call; its body is empty),
// nil for the zero Handshake.
func (h Handshake) Request() *http.Request {
	if h.IsZero() {
		return nil
	}
	f, _ := h.fields()
	u := h.URL()
	major, minor, _ := http.ParseHTTPVersion(f[hsProto])
	return &http.Request{
		Method:     http.MethodGet, // a handshake is always a GET (ServeHTTP)
		URL:        u,
		Proto:      f[hsProto],
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     h.Header(),
		Body:       http.NoBody,
		Host:       f[hsHost],
		RemoteAddr: f[hsAddr],
		RequestURI: u.RequestURI(),
		TLS:        h.tls,
	}
}
