package httpapi

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"
)

// Handler returns the API as a net/http handler, for mounting behind the server's mux.
//
// It does what adaptor.FiberApp does, with three differences that matter for a public
// endpoint: the body is read through a limit of MaxBodyBytes+1 (the adaptor buffers any
// size), repeated header lines are all kept (X-Forwarded-For), and a body that cannot be
// read is answered with the JSON error contract instead of a plain-text 500.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(a.serveHTTP)
}

var zeroAddr = &net.TCPAddr{IP: net.IPv4zero}

func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var fctx fasthttp.RequestCtx
	remote := net.Addr(zeroAddr)
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = net.TCPAddrFromAddrPort(ap)
	}
	fctx.Init(&fasthttp.Request{}, remote, fasthttpLogger{a.log})
	req := &fctx.Request

	tooLarge := r.ContentLength > int64(a.maxBody)
	if !tooLarge && r.Body != nil && r.Body != http.NoBody {
		n, err := io.Copy(req.BodyWriter(), io.LimitReader(r.Body, int64(a.maxBody)+1))
		switch {
		case err != nil:
			fctx.SetUserValue(ctxBodyUnreadable, true)
			req.ResetBody()
		case n > int64(a.maxBody):
			tooLarge = true
		}
	}
	if tooLarge {
		fctx.SetUserValue(ctxBodyTooLarge, true)
		req.ResetBody()
	}

	req.Header.SetMethod(r.Method)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	req.SetRequestURI(uri)
	req.Header.SetHost(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	// The body we hold is the truth, whatever Content-Length the client claimed.
	req.Header.SetContentLength(len(req.Body()))

	a.fast(&fctx)

	h := w.Header()
	fctx.Response.Header.VisitAll(func(k, v []byte) {
		key := string(k)
		// net/http computes framing itself.
		if strings.EqualFold(key, "Content-Length") || strings.EqualFold(key, "Connection") ||
			strings.EqualFold(key, "Transfer-Encoding") {
			return
		}
		h.Add(key, string(v))
	})
	w.WriteHeader(fctx.Response.StatusCode())
	_, _ = w.Write(fctx.Response.Body()) // the client going away is not ours to report
}
