package engineio_test

import (
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

// requestCopy is a deep copy of what a handshake request said, taken while it is served.
type requestCopy struct {
	header     http.Header
	url        url.URL
	host       string
	remoteAddr string
}

// TestHandshakeAfterRequest: a session reports the headers, query, URL and address its
// handshake request had, on both transports, after the HTTP server is done with that
// request and has served others on the same connection.
func TestHandshakeAfterRequest(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]requestCopy{} // by the "case" query parameter
	e := startEnv(t, engineio.Options{Admit: func(r *http.Request) (func(), *engineio.Refusal) {
		mu.Lock()
		seen[r.URL.Query().Get("case")] = requestCopy{r.Header.Clone(), *r.URL, r.Host, r.RemoteAddr}
		mu.Unlock()
		return nil, nil
	}})
	check := func(name string, c *engineio.Conn) {
		t.Helper()
		mu.Lock()
		want := seen[name]
		mu.Unlock()
		hs := c.Handshake()
		if c.RemoteAddr() != want.remoteAddr || hs.RemoteAddr() != want.remoteAddr {
			t.Errorf("%s: address %q, want %q", name, c.RemoteAddr(), want.remoteAddr)
		}
		if got := hs.Header(); !reflect.DeepEqual(got, want.header) {
			t.Errorf("%s: header %v, want %v", name, got, want.header)
		}
		if got := hs.Query(); !reflect.DeepEqual(got, want.url.Query()) {
			t.Errorf("%s: query %v, want %v", name, got, want.url.Query())
		}
		if got := hs.Values("x-multi"); !reflect.DeepEqual(got, []string{"one", "two"}) {
			t.Errorf("%s: X-Multi %v", name, got)
		}
		r := c.Request()
		if !reflect.DeepEqual(*r.URL, want.url) || r.Host != want.host || r.RemoteAddr != want.remoteAddr ||
			!reflect.DeepEqual(r.Header, want.header) || r.Method != http.MethodGet {
			t.Errorf("%s: request %+v", name, r)
		}
	}

	// Polling: the handshake, then polls and a POST on the same keep-alive connection.
	req, err := http.NewRequest(http.MethodGet, e.url("EIO=4&transport=polling&case=polling&token=a%20b&x=1&x=2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Set("Origin", "http://app.example")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("handshake: status %d, %v", res.StatusCode, err)
	}
	body := string(b)
	sid := parseOpen(t, body).SID
	e.rec.next(t, "open")
	if st, _ := e.post(sid, "4hello"); st != http.StatusOK {
		t.Fatalf("post status %d", st)
	}
	e.rec.next(t, "message")
	check("polling", e.conn(sid))

	// Websocket: the handshake, then messages on it.
	u := url.URL{Scheme: "ws", Host: e.addr, Path: e.eio.Options().Path, RawQuery: "EIO=4&transport=websocket&case=websocket&q=%C3%A9"}
	ws, _, err := websocket.DefaultDialer.Dial(u.String(), http.Header{"X-Multi": {"one", "two"}, "Origin": {"http://app.example"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	_, open := readWS(t, ws)
	sid = parseOpen(t, open).SID
	e.rec.next(t, "open")
	writeWS(t, ws, websocket.TextMessage, "4hello")
	e.rec.next(t, "message")
	check("websocket", e.conn(sid))
}
