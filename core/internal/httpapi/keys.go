package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

// Scopes a Key can hold; ScopeAll grants every one.
const (
	ScopePush      = "push"
	ScopeBroadcast = "broadcast"
	ScopeRoom      = "room"
	ScopeStatus    = "status"
	ScopePlugins   = "plugins"
	ScopeNotify    = "notify"
	ScopeAll       = "*"
)

// MaxAPIKeyLength bounds an API key secret in bytes, configured or presented in X-API-Key.
const MaxAPIKeyLength = 512

var knownScopes = map[string]bool{
	ScopePush: true, ScopeBroadcast: true, ScopeRoom: true, ScopeStatus: true,
	ScopePlugins: true, ScopeNotify: true, ScopeAll: true,
}

// Key is one API key: Name identifies it in logs and rate limits (the secret never
// appears there), Secret is what clients send in X-API-Key and sign with.
type Key struct {
	Name   string
	Secret string
	Scopes []string // ScopePush ... ScopeNotify, or ScopeAll
}

// keyEntry is a configured key prepared for constant-time lookup.
type keyEntry struct {
	name   string
	secret []byte
	digest [sha256.Size]byte // sha256(secret): compared instead of the secret so length does not leak
	scopes map[string]bool
}

func (k *keyEntry) allows(scope string) bool { return k.scopes[ScopeAll] || k.scopes[scope] }

type keyRing struct{ keys []keyEntry }

func newKeyRing(keys []Key) (*keyRing, error) {
	r := &keyRing{}
	names := map[string]bool{}
	secrets := map[string]bool{}
	for i, k := range keys {
		if k.Name == "" {
			return nil, fmt.Errorf("api key #%d: empty name", i+1)
		}
		if names[k.Name] {
			return nil, fmt.Errorf("api key %q: duplicate name", k.Name)
		}
		if k.Secret == "" {
			return nil, fmt.Errorf("api key %q: empty secret", k.Name)
		}
		if len(k.Secret) > MaxAPIKeyLength {
			return nil, fmt.Errorf("api key %q: secret longer than %d bytes", k.Name, MaxAPIKeyLength)
		}
		if secrets[k.Secret] {
			return nil, fmt.Errorf("api key %q: secret shared with another key", k.Name)
		}
		if len(k.Scopes) == 0 {
			return nil, fmt.Errorf("api key %q: no scopes", k.Name)
		}
		e := keyEntry{name: k.Name, secret: []byte(k.Secret), digest: sha256.Sum256([]byte(k.Secret)), scopes: map[string]bool{}}
		for _, s := range k.Scopes {
			if !knownScopes[s] {
				return nil, fmt.Errorf("api key %q: unknown scope %q", k.Name, s)
			}
			e.scopes[s] = true
		}
		names[k.Name], secrets[k.Secret] = true, true
		r.keys = append(r.keys, e)
	}
	return r, nil
}

// lookup finds the key whose secret equals presented. It compares fixed-size digests
// against every key without stopping early, so neither the position of the match nor the
// secrets' lengths show in the timing.
func (r *keyRing) lookup(presented string) *keyEntry {
	d := sha256.Sum256([]byte(presented))
	found := -1
	for i := range r.keys {
		eq := subtle.ConstantTimeCompare(d[:], r.keys[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil
	}
	return &r.keys[found]
}
