// Package webassets serves files that live on disk next to the server but are not part of
// its source: the pinned npm packages a build fetches (the socket.io-client bundles) and
// the pages of the development demo.
//
// A Set is a directory and the names it may serve. Each file is read once and kept in
// memory with its ETag and its gzip and brotli forms, so a request is answered without
// touching the disk again; a file that changes on disk (size or modification time) is read
// again. A file that is missing answers 404 with a JSON hint naming the command that
// fetches it, and the absence is logged once, not per request: the server runs fine without
// these files.
package webassets

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/hashicorp/go-hclog"
)

// MaxFileBytes bounds a file kept in memory; the client bundles are a few hundred KB.
const MaxFileBytes = 16 << 20

// Options describe a Set.
type Options struct {
	// Dir holds the files; relative to the working directory.
	Dir string
	// Files maps every servable name (slash separated, relative to Dir) to its content
	// type. Nil serves any regular file under Dir whose name has no dot-prefixed element,
	// typed by its extension.
	Files map[string]string
	// CacheControl is sent with every file; "" sends "no-cache" (revalidate every time,
	// answered by 304 while the ETag holds).
	CacheControl string
	// Hint says how to get the files when they are missing, e.g. "run `make client`".
	Hint   string
	Logger hclog.Logger
}

// Set serves the files of one directory.
type Set struct {
	opts Options

	mu        sync.Mutex
	cache     map[string]*entry
	warnedDir bool // absence logged; reset once a file is found again
}

type entry struct {
	size    int64
	modTime time.Time
	etag    string
	ctype   string
	raw     []byte
	gz      []byte // nil when compressing does not make it smaller
	br      []byte
}

// New returns a Set; nothing is read until a request asks.
func New(opts Options) *Set {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.CacheControl == "" {
		opts.CacheControl = "no-cache"
	}
	return &Set{opts: opts, cache: make(map[string]*entry)}
}

// Has reports whether name is one the Set may serve and exists on disk.
func (s *Set) Has(name string) bool {
	p, ok := s.path(name)
	if !ok {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// path maps a request name to a file path, refusing names outside the Set.
func (s *Set) path(name string) (string, bool) {
	name = strings.TrimPrefix(name, "/")
	if s.opts.Files != nil {
		if _, ok := s.opts.Files[name]; !ok {
			return "", false
		}
		return filepath.Join(s.opts.Dir, filepath.FromSlash(name)), true
	}
	if name == "" || !fs.ValidPath(name) {
		return "", false
	}
	for _, el := range strings.Split(name, "/") {
		if strings.HasPrefix(el, ".") {
			return "", false
		}
	}
	return filepath.Join(s.opts.Dir, filepath.FromSlash(name)), true
}

func (s *Set) contentType(name string) string {
	if t, ok := s.opts.Files[name]; ok && t != "" {
		return t
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// load returns the file's entry, reading it when it is new or changed.
func (s *Set) load(name, p string) (*entry, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	if st.Size() > MaxFileBytes {
		return nil, errors.New("larger than " + strconv.Itoa(MaxFileBytes) + " bytes")
	}
	s.mu.Lock()
	e := s.cache[name]
	s.mu.Unlock()
	if e != nil && e.size == st.Size() && e.modTime.Equal(st.ModTime()) {
		return e, nil
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	e = &entry{size: st.Size(), modTime: st.ModTime(), raw: raw, ctype: s.contentType(name),
		etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	e.gz = compress(raw, func(b *bytes.Buffer) writeCloser {
		w, _ := gzip.NewWriterLevel(b, gzip.DefaultCompression)
		return w
	})
	e.br = compress(raw, func(b *bytes.Buffer) writeCloser {
		return brotli.NewWriterLevel(b, brotli.DefaultCompression)
	})
	s.mu.Lock()
	s.cache[name] = e
	s.mu.Unlock()
	return e, nil
}

type writeCloser interface {
	Write([]byte) (int, error)
	Close() error
}

// compress returns raw compressed, or nil when that saves nothing.
func compress(raw []byte, newWriter func(*bytes.Buffer) writeCloser) []byte {
	var b bytes.Buffer
	w := newWriter(&b)
	if _, err := w.Write(raw); err != nil {
		return nil
	}
	if err := w.Close(); err != nil || b.Len() >= len(raw) {
		return nil
	}
	return b.Bytes()
}

// Serve answers GET and HEAD for name (a path relative to the Set, leading slash allowed).
func (s *Set) Serve(w http.ResponseWriter, r *http.Request, name string) {
	name = strings.TrimPrefix(name, "/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		WriteError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed", "")
		return
	}
	p, ok := s.path(name)
	if !ok {
		WriteError(w, http.StatusNotFound, "NOT_FOUND", "Not found", "")
		return
	}
	e, err := s.load(name, p)
	if err != nil {
		s.missing(name, p, err)
		WriteError(w, http.StatusNotFound, "NOT_FOUND", "Not found: "+name, s.opts.Hint)
		return
	}
	s.mu.Lock()
	s.warnedDir = false
	s.mu.Unlock()
	h := w.Header()
	h.Set("Cache-Control", s.opts.CacheControl)
	h.Set("ETag", e.etag)
	h.Set("Vary", "Accept-Encoding")
	if etagMatch(r.Header.Get("If-None-Match"), e.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := e.raw
	switch enc := pickEncoding(r.Header.Get("Accept-Encoding"), e); enc {
	case "br":
		body = e.br
		h.Set("Content-Encoding", enc)
	case "gzip":
		body = e.gz
		h.Set("Content-Encoding", enc)
	}
	h.Set("Content-Type", e.ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// missing logs a file that cannot be served, once until one is served again.
func (s *Set) missing(name, p string, err error) {
	s.mu.Lock()
	first := !s.warnedDir
	s.warnedDir = true
	s.mu.Unlock()
	if !first {
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		s.opts.Logger.Warn("file to serve is missing; its route answers 404 until it exists",
			"file", p, "name", name, "hint", s.opts.Hint)
		return
	}
	s.opts.Logger.Error("cannot serve file", "file", p, "name", name, "error", err)
}

// etagMatch implements If-None-Match for a strong tag: "*", or the tag in the list, weak
// or not (a weak comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// pickEncoding chooses br over gzip over none, by the client's Accept-Encoding q-values.
func pickEncoding(header string, e *entry) string {
	q := map[string]float64{}
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		coding := strings.ToLower(strings.TrimSpace(fields[0]))
		if coding == "" {
			continue
		}
		v := 1.0
		for _, f := range fields[1:] {
			f = strings.TrimSpace(f)
			if strings.HasPrefix(f, "q=") {
				if x, err := strconv.ParseFloat(f[2:], 64); err == nil {
					v = x
				}
			}
		}
		q[coding] = v
	}
	accept := func(c string) float64 {
		if v, ok := q[c]; ok {
			return v
		}
		if v, ok := q["*"]; ok {
			return v
		}
		return 0
	}
	best, bestQ := "", 0.0
	if e.br != nil && accept("br") > bestQ {
		best, bestQ = "br", accept("br")
	}
	if e.gz != nil && accept("gzip") > bestQ {
		best = "gzip"
	}
	return best
}

// WriteError writes the API's error body {success:false,error,code} (plus hint when
// given) with status.
func WriteError(w http.ResponseWriter, status int, code, message, hint string) {
	body := map[string]any{"success": false, "error": message, "code": code}
	if hint != "" {
		body["hint"] = hint
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
