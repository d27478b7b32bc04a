package pluginhost

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// lineLogger is an io.Writer that logs each line written to it: go-plugin hands
// it what the plugin writes to stdout and stderr after start-up (which it would
// otherwise discard).
type lineLogger struct {
	log    hclog.Logger
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimRight(w.buf[:i], "\r"); len(line) > 0 {
			w.log.Info(string(line), "stream", w.stream)
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // an endless line: log what we have
		w.log.Info(string(w.buf), "stream", w.stream)
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// lastWords keeps the last lines a plugin wrote to stderr, for the error of a plugin that
// exits while it starts (the SDK says there why it refuses to serve). A JSON log line
// counts as its message. Once the plugin has started (stop), it keeps nothing more.
type lastWords struct {
	stopped atomic.Bool
	mu      sync.Mutex
	lines   []string
	part    []byte
}

const (
	lastWordsLines   = 3
	lastWordsLineMax = 1 << 10
)

func (w *lastWords) Write(p []byte) (int, error) {
	n := len(p)
	if w.stopped.Load() {
		return n, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if room := lastWordsLineMax - len(w.part); room > 0 {
				w.part = append(w.part, p[:min(room, len(p))]...)
			}
			break
		}
		if room := lastWordsLineMax - len(w.part); room > 0 {
			w.part = append(w.part, p[:min(room, i)]...)
		}
		w.add(w.part)
		w.part = w.part[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (w *lastWords) add(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	var entry struct {
		Message string `json:"@message"`
	}
	if json.Unmarshal(line, &entry) == nil && entry.Message != "" {
		line = []byte(entry.Message)
	}
	w.lines = append(w.lines, string(line))
	if len(w.lines) > lastWordsLines {
		w.lines = w.lines[1:]
	}
}

// String is the kept lines, joined by " | ", or "".
func (w *lastWords) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, " | ")
}
