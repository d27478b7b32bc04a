package pluginhost

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rtserver/rtserver/core/internal/dispatch"
)

const wildcard = "*"

// Routes are the names a plugin handles, per kind.
type Routes struct {
	Events   []string `json:"events"`
	Messages []string `json:"messages"`
	Actions  []string `json:"actions"`
}

func (r Routes) of(k dispatch.Kind) []string {
	switch k {
	case dispatch.KindEvent:
		return r.Events
	case dispatch.KindMessage:
		return r.Messages
	case dispatch.KindAction:
		return r.Actions
	}
	return nil
}

var kinds = []dispatch.Kind{dispatch.KindEvent, dispatch.KindMessage, dispatch.KindAction}

// table maps (kind, name) to the slot that handles it; exact names win over a
// wildcard. It is immutable once built and swapped whole, so Dispatch reads it
// without a lock.
type table struct {
	exact map[dispatch.Kind]map[string]*slot
	wild  map[dispatch.Kind]*slot
}

func (t *table) lookup(k dispatch.Kind, name string) *slot {
	if t == nil {
		return nil
	}
	if s := t.exact[k][name]; s != nil {
		return s
	}
	return t.wild[k]
}

// buildTable routes every slot that has routes; two slots claiming the same name
// (or both claiming the wildcard) of one kind is an error naming both.
func buildTable(slots []*slot) (*table, error) {
	t := &table{exact: map[dispatch.Kind]map[string]*slot{}, wild: map[dispatch.Kind]*slot{}}
	sort.Slice(slots, func(i, j int) bool { return slots[i].name < slots[j].name })
	var conflicts []string
	for _, s := range slots {
		for _, k := range kinds {
			for _, n := range s.routes.of(k) {
				if n == wildcard {
					if o := t.wild[k]; o != nil && o != s {
						conflicts = append(conflicts, fmt.Sprintf("%s %q claimed by both %s and %s", k, n, o.name, s.name))
						continue
					}
					t.wild[k] = s
					continue
				}
				m := t.exact[k]
				if m == nil {
					m = map[string]*slot{}
					t.exact[k] = m
				}
				if o := m[n]; o != nil && o != s {
					conflicts = append(conflicts, fmt.Sprintf("%s %q claimed by both %s and %s", k, n, o.name, s.name))
					continue
				}
				m[n] = s
			}
		}
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("conflicting plugin routes: %s", strings.Join(conflicts, "; "))
	}
	return t, nil
}
