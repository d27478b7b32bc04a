package sdk

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

type routesOnly struct{ info Info }

func (r routesOnly) Info() Info { return r.info }

type pointerEvents struct{}

func (pointerEvents) Info() Info { return Info{Name: "ptr", Events: []string{"e"}} }
func (*pointerEvents) OnEvent(context.Context, Event) (Reply, error) {
	return Reply{}, nil
}

type wrongEvent struct{}

func (wrongEvent) Info() Info                                     { return Info{Name: "wrong"} }
func (wrongEvent) OnEvent(context.Context, *Event) (Reply, error) { return Reply{}, nil }

type wrongConfigure struct{ routesOnly }

func (wrongConfigure) Configure(json.RawMessage) error { return nil }

// TestCheck: Serve's check refuses a plugin that routes a kind without its handler, or
// whose handler or Configure has another signature, naming the route and the method.
func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		p    Plugin
		want []string // empty: accepted
	}{
		{"full", &full{}, nil},
		{"no routes, no handlers", routesOnly{Info{Name: "quiet"}}, nil},
		{"routed kind without a handler", routesOnly{Info{Name: "r", Messages: []string{"m"}, Actions: []string{"a"}}},
			[]string{`plugin "r"`, `routes messages ["m"] but it has no method OnMessage(ctx context.Context, m sdk.Message) (sdk.Reply, error)`,
				`routes actions ["a"] but it has no method OnAction(`}},
		{"handler of another signature", wrongEvent{},
			[]string{"its OnEvent is func(context.Context, *sdk.Event) (sdk.Reply, error), not OnEvent(ctx context.Context, e sdk.Event)"}},
		{"pointer receiver passed by value", pointerEvents{},
			[]string{`routes events ["e"] but OnEvent is declared on *pointerEvents: pass a pointer to sdk.Serve`}},
		{"pointer receiver passed as a pointer", &pointerEvents{}, nil},
		{"Configure of another signature", wrongConfigure{},
			[]string{"its Configure is func(json.RawMessage) error, not Configure(ctx context.Context, config json.RawMessage) error"}},
		{"nil", nil, []string{"got nil"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := check(c.p)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("%q lacks %q", err, w)
				}
			}
		})
	}
}
