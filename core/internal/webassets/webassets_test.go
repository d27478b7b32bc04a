package webassets

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/hashicorp/go-hclog"
)

func get(t *testing.T, s *Set, name string, hdr map[string]string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/"+name, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Serve(w, r, name)
	return w.Result()
}

func TestServeTypesETagAndEncodings(t *testing.T) {
	dir := t.TempDir()
	js := []byte(strings.Repeat("console.log('hello');\n", 200))
	if err := os.WriteFile(filepath.Join(dir, "a.js"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Dir: dir, Files: map[string]string{"a.js": "application/javascript"},
		CacheControl: "public, max-age=0"})

	res := get(t, s, "a.js", nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.Equal(body, js) {
		t.Fatalf("status %d, %d bytes", res.StatusCode, len(body))
	}
	if got := res.Header.Get("Content-Type"); got != "application/javascript" {
		t.Errorf("content type %q", got)
	}
	if got := res.Header.Get("Cache-Control"); got != "public, max-age=0" {
		t.Errorf("cache control %q", got)
	}
	etag := res.Header.Get("ETag")
	if etag == "" || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("etag %q, encoding %q", etag, res.Header.Get("Content-Encoding"))
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		if res := get(t, s, "a.js", map[string]string{"If-None-Match": inm}); res.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match %s: status %d", inm, res.StatusCode)
		}
	}
	if res := get(t, s, "a.js", map[string]string{"If-None-Match": `"other"`}); res.StatusCode != 200 {
		t.Errorf("other etag: status %d", res.StatusCode)
	}

	res = get(t, s, "a.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if res.Header.Get("Content-Encoding") != "br" {
		t.Fatalf("encoding %q, want br", res.Header.Get("Content-Encoding"))
	}
	got, err := io.ReadAll(brotli.NewReader(res.Body))
	if err != nil || !bytes.Equal(got, js) {
		t.Fatalf("brotli body: %v", err)
	}
	res = get(t, s, "a.js", map[string]string{"Accept-Encoding": "gzip;q=1, br;q=0.5"})
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("encoding %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, js) {
		t.Fatalf("gzip body: %v", err)
	}
	if res := get(t, s, "a.js", map[string]string{"Accept-Encoding": "br;q=0, gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Errorf("q=0 still encoded %q", res.Header.Get("Content-Encoding"))
	}

	// A file replaced on disk is read again, with a new tag.
	if err := os.WriteFile(filepath.Join(dir, "a.js"), []byte("changed();"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = get(t, s, "a.js", nil)
	body, _ = io.ReadAll(res.Body)
	if string(body) != "changed();" || res.Header.Get("ETag") == etag {
		t.Errorf("after change: %q, etag %s", body, res.Header.Get("ETag"))
	}
}

func TestMissingAnswersHintLoggedOnce(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{mu: &mu, w: &logs}, Level: hclog.Warn})
	s := New(Options{Dir: filepath.Join(t.TempDir(), "absent"), Files: map[string]string{"x.js": ""},
		Hint: "run `make client`", Logger: log})
	for range 3 {
		res := get(t, s, "x.js", nil)
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 404 || body["code"] != "NOT_FOUND" || body["hint"] != "run `make client`" {
			t.Fatalf("status %d body %v", res.StatusCode, body)
		}
	}
	mu.Lock()
	n := strings.Count(logs.String(), "missing")
	mu.Unlock()
	if n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs.String())
	}
}

func TestNamesOutsideTheSetAreRefused(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>hi</p>"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, ".secret"), []byte("no"), 0o644)
	s := New(Options{Dir: dir})
	if res := get(t, s, "index.html", nil); res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("index: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, name := range []string{".secret", "../index.html", "a/../../x", "", "sub/.git/config"} {
		if res := get(t, s, name, nil); res.StatusCode != 404 {
			t.Errorf("%q: status %d", name, res.StatusCode)
		}
		if s.Has(name) {
			t.Errorf("Has(%q)", name)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/index.html", nil)
	w := httptest.NewRecorder()
	s.Serve(w, r, "index.html")
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
