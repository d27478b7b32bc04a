package socketio

import (
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// maxInternedNames bounds nameTable. The names come from the application's On calls and
// handler tables, never from clients, but an application that registers a name per
// socket must not make the table grow forever; past the bound, new names are decoded
// as before.
const maxInternedNames = 256

// nameTable holds the event names handlers are registered for, so that decoding an
// EVENT with one of them reuses the registered string instead of allocating the name:
// one allocation less per inbound event. Reads are lock-free (copy on write); writes
// happen when a handler is registered for a name not yet in the table, so sockets that
// share a handler table add nothing after the first.
type nameTable struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]string]
}

func (t *nameTable) load() map[string]string {
	if p := t.m.Load(); p != nil {
		return *p
	}
	return nil
}

// addKeys records the keys of handlers.
func (t *nameTable) addKeys(handlers map[string]EventHandler) {
	cur := t.load()
	missing := false
	for k := range handlers {
		if _, ok := cur[k]; !ok {
			missing = true
			break
		}
	}
	if !missing || len(cur) >= maxInternedNames {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur = t.load()
	next := make(map[string]string, len(cur)+len(handlers))
	for k, v := range cur {
		next[k] = v
	}
	for k := range handlers {
		if len(next) >= maxInternedNames {
			break
		}
		next[k] = k
	}
	t.m.Store(&next)
}

// add records one name.
func (t *nameTable) add(name string) {
	cur := t.load()
	if _, ok := cur[name]; ok || len(cur) >= maxInternedNames {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur = t.load()
	if _, ok := cur[name]; ok || len(cur) >= maxInternedNames {
		return
	}
	next := make(map[string]string, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[name] = name
	t.m.Store(&next)
}

// internedString is unquoteString for a JSON string literal without escapes or
// non-ASCII bytes whose text is a key of names: it returns the table's string, and
// false for anything else (the caller then decodes as usual). The text of an escaped
// literal differs from its bytes, so only plain ones may be looked up.
func internedString(lit []byte, names map[string]string) (string, bool) {
	if len(names) == 0 || len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	body := lit[1 : len(lit)-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c >= utf8.RuneSelf {
			return "", false
		}
	}
	s, ok := names[string(body)]
	return s, ok
}
