package engineio

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestHandshakeKeepsRequest: what a session keeps of its handshake rebuilds the request's
// address, Host, protocol, URL, query and headers exactly, multi-valued and long (length
// prefixes of several bytes) headers included.
func TestHandshakeKeepsRequest(t *testing.T) {
	long := strings.Repeat("v", 70_000)
	for _, target := range []string{
		"/socket.io/?EIO=4&transport=websocket&token=a%20b&x=1&x=2",
		"/socket.io/",
		"/socket.io/?",                      // ForceQuery
		"/sock%2Fet.io/?EIO=4",              // RawPath
		"http://example.com/socket.io/?a=b", // absolute form: scheme and host in the URL
	} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{
			Method: http.MethodGet, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Host: "example.com:8080", RemoteAddr: "192.0.2.7:51234",
			Header: http.Header{
				"Origin":          {"https://app.example"},
				"X-Forwarded-For": {"203.0.113.1", "198.51.100.2"},
				"Cookie":          {"a=1; b=2"},
				"X-Long":          {long},
				"X-Empty":         {""},
			},
		}
		hs := newHandshake(r)
		if got := hs.RemoteAddr(); got != r.RemoteAddr {
			t.Errorf("%s: address %q", target, got)
		}
		if got := hs.Header(); !reflect.DeepEqual(got, r.Header) {
			t.Errorf("%s: header %v, want %v", target, got, r.Header)
		}
		if got := hs.Query(); !reflect.DeepEqual(got, r.URL.Query()) {
			t.Errorf("%s: query %v, want %v", target, got, r.URL.Query())
		}
		if got := hs.URL(); !reflect.DeepEqual(got, r.URL) {
			t.Errorf("%s: url %#v, want %#v", target, got, r.URL)
		}
		if got := hs.Values("x-forwarded-for"); !reflect.DeepEqual(got, r.Header.Values("X-Forwarded-For")) {
			t.Errorf("%s: X-Forwarded-For %v", target, got)
		}
		if hs.Get("X-Long") != long || hs.Get("X-Empty") != "" || hs.Values("X-Missing") != nil {
			t.Errorf("%s: single values", target)
		}
		if hs.Secure() {
			t.Errorf("%s: secure without TLS", target)
		}
		got := hs.Request()
		if got.Method != r.Method || got.Host != r.Host || got.Proto != r.Proto || got.ProtoMajor != 1 ||
			got.ProtoMinor != 1 || got.RemoteAddr != r.RemoteAddr || got.TLS != nil || got.Body != http.NoBody ||
			got.RequestURI != r.URL.RequestURI() || !reflect.DeepEqual(got.URL, r.URL) ||
			!reflect.DeepEqual(got.Header, r.Header) {
			t.Errorf("%s: request %+v", target, got)
		}
		// Every call is a copy of its own: a reader changing it changes nothing kept.
		got.Header.Set("Origin", "changed")
		got.URL.Path = "/changed"
		if hs.Get("Origin") != "https://app.example" || hs.URL().Path != r.URL.Path {
			t.Errorf("%s: a rebuilt request shares state with the session", target)
		}
	}

	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, RemoteAddr: "[::1]:1", TLS: &tls.ConnectionState{}}
	if hs := newHandshake(r); !hs.Secure() || hs.Request().TLS != r.TLS || len(hs.Header()) != 0 {
		t.Errorf("TLS handshake without headers: secure %v header %v", hs.Secure(), hs.Header())
	}

	var zero Handshake
	if !zero.IsZero() || zero.Request() != nil || zero.URL() != nil || zero.RemoteAddr() != "" ||
		zero.Header() == nil || len(zero.Header()) != 0 || zero.Query() == nil || zero.Values("Origin") != nil {
		t.Errorf("zero Handshake")
	}
}
