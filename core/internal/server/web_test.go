package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/config"
)

// clientDist returns web/client's installed socket.io-client dist folder, running
// `npm ci` there first when it is not installed (what `make client` does).
func clientDist(t *testing.T) string {
	t.Helper()
	root := moduleRoot(t)
	dist := filepath.Join(root, "web", "client", "node_modules", "socket.io-client", "dist")
	if _, err := os.Stat(filepath.Join(dist, "socket.io.js")); err == nil {
		return dist
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not installed: cannot fetch socket.io-client into web/client (make client)")
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = filepath.Join(root, "web", "client")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in web/client: %v\n%s", err, out)
	}
	return dist
}

func httpGet(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// A bare transport: Go's default one asks for gzip itself and hides the encoding.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// The official bundles are served as the Node server serves them: the npm package's own
// bytes, JavaScript and JSON types, public max-age=0, an ETag answered with 304, and
// brotli or gzip when the client takes them.
func TestClientBundleServed(t *testing.T) {
	dist := clientDist(t)
	e := startServer(t, func(c *config.Config) { c.SocketIO.ClientDir = dist })
	for _, name := range []string{"socket.io.js", "socket.io.min.js", "socket.io.esm.min.js",
		"socket.io.js.map", "socket.io.min.js.map", "socket.io.esm.min.js.map"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dist, name))
			if err != nil {
				t.Fatal(err)
			}
			url := e.url + "/socket.io/" + name
			res, body := httpGet(t, url, nil)
			if res.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("status %d, %d bytes (want %d)", res.StatusCode, len(body), len(want))
			}
			wantType := "application/javascript"
			if strings.HasSuffix(name, ".map") {
				wantType = "application/json"
			}
			if got := res.Header.Get("Content-Type"); got != wantType {
				t.Errorf("Content-Type %q, want %q", got, wantType)
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=0" {
				t.Errorf("Cache-Control %q", got)
			}
			etag := res.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if res, body := httpGet(t, url, map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("If-None-Match: status %d, %d bytes", res.StatusCode, len(body))
			}
			res, body = httpGet(t, url, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
			if res.Header.Get("Content-Encoding") != "br" {
				t.Fatalf("Content-Encoding %q, want br", res.Header.Get("Content-Encoding"))
			}
			if got, err := io.ReadAll(brotli.NewReader(bytes.NewReader(body))); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("brotli body differs: %v", err)
			}
			res, body = httpGet(t, url, map[string]string{"Accept-Encoding": "gzip"})
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("gzip body differs: %v", err)
			}
		})
	}
	// Other names under the path are still the engine's.
	res, _ := httpGet(t, e.url+"/socket.io/socket.io.msgpack.min.js", nil)
	if res.StatusCode == 200 {
		t.Errorf("msgpack bundle served; only the Node server's list is")
	}
}

// Without the files the route answers 404 with the command that fetches them; with
// serve_client off it is not a route at all.
func TestClientBundleAbsentOrOff(t *testing.T) {
	e := startServer(t, func(c *config.Config) { c.SocketIO.ClientDir = filepath.Join(t.TempDir(), "none") })
	res, body := httpGet(t, e.url+"/socket.io/socket.io.js", nil)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	if res.StatusCode != 404 || m["code"] != "NOT_FOUND" || !strings.Contains(m["hint"].(string), "make client") {
		t.Fatalf("status %d body %s", res.StatusCode, body)
	}

	off := startServer(t, func(c *config.Config) {
		c.SocketIO.ServeClient = false
		c.SocketIO.ClientDir = clientDist(t)
	})
	res, body = httpGet(t, off.url+"/socket.io/socket.io.js", nil)
	if res.StatusCode == 200 || strings.Contains(string(body), "hint") {
		t.Fatalf("serve_client=false: status %d body %.200s", res.StatusCode, body)
	}
}

func postJSON(t *testing.T, url string, body string) (int, map[string]any) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func demoConfig(c *config.Config) {
	c.Environment = config.EnvDevelopment
	c.Demo.Dir = filepath.Join(moduleRoot(nil), "web", "demo")
	c.Demo.TokensPerMinute = 3
}

// In development the page is at / and mints tokens the server accepts, a few a minute.
func TestDemoPageAndToken(t *testing.T) {
	e := startServer(t, demoConfig)
	res, body := httpGet(t, e.url+"/", nil)
	if res.StatusCode != 200 || !strings.Contains(string(body), "/socket.io/socket.io.js") {
		t.Fatalf("GET /: %d %.200s", res.StatusCode, body)
	}
	if res, _ := httpGet(t, e.url+"/app.js", nil); res.StatusCode != 200 {
		t.Fatalf("GET /app.js: %d", res.StatusCode)
	}
	// The API keeps its own paths.
	if res, _ := httpGet(t, e.url+"/health", nil); res.StatusCode != 200 {
		t.Fatalf("GET /health: %d", res.StatusCode)
	}

	code, m := postJSON(t, e.url+"/dev/token", `{"userId":"alice"}`)
	if code != 200 || m["token"] == nil {
		t.Fatalf("token: %d %v", code, m)
	}
	v, err := auth.NewVerifier(auth.Options{Secret: []byte(testSecret), Algorithms: []string{"HS256"}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(m["token"].(string))
	if err != nil || claims.UserID != "alice" || time.Until(claims.ExpiresAt) > 16*time.Minute {
		t.Fatalf("token claims %+v, %v", claims, err)
	}
	if code, m := postJSON(t, e.url+"/dev/token", `{"userId":""}`); code != 400 || m["code"] != "INVALID_REQUEST" {
		t.Fatalf("empty userId: %d %v", code, m)
	}
	if code, m := postJSON(t, e.url+"/dev/token", strings.Repeat("x", 2000)); code != 400 || m["code"] != "INVALID_REQUEST" {
		t.Fatalf("big body: %d %v", code, m)
	}
	// Three a minute: the fourth request is refused, or a later one if the machine is so
	// slow that an allowance came back meanwhile.
	for i := 0; ; i++ {
		code, m := postJSON(t, e.url+"/dev/token", `{"userId":"bob"}`)
		if code == 429 && m["code"] == "RATE_LIMITED" {
			break
		}
		if code != 200 || i == 5 {
			t.Fatalf("request %d past the limit: %d %v", 4+i, code, m)
		}
	}
}

// Outside development neither the page nor the token endpoint exists.
func TestDemoAbsentOutsideDevelopment(t *testing.T) {
	e := startServer(t, func(c *config.Config) {
		demoConfig(c)
		c.Environment = "production"
	})
	if res, _ := httpGet(t, e.url+"/", nil); res.StatusCode != 404 {
		t.Fatalf("GET /: %d", res.StatusCode)
	}
	if code, _ := postJSON(t, e.url+"/dev/token", `{"userId":"alice"}`); code != 404 {
		t.Fatalf("token endpoint in production: %d", code)
	}
}
