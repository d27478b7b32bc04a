package sdk

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// handlerSpec is one of the methods a plugin may implement, and the routes that need it.
type handlerSpec struct {
	method    string
	signature string // as the plugin author writes it
	kind      string // "events", "messages", "actions"; "" for Configure
	iface     reflect.Type
	routes    func(Info) []string
}

var handlerSpecs = []handlerSpec{
	{"OnEvent", "OnEvent(ctx context.Context, e sdk.Event) (sdk.Reply, error)", "events",
		reflect.TypeFor[EventHandler](), func(i Info) []string { return i.Events }},
	{"OnMessage", "OnMessage(ctx context.Context, m sdk.Message) (sdk.Reply, error)", "messages",
		reflect.TypeFor[MessageHandler](), func(i Info) []string { return i.Messages }},
	{"OnAction", "OnAction(ctx context.Context, a sdk.Action) (sdk.Reply, error)", "actions",
		reflect.TypeFor[ActionHandler](), func(i Info) []string { return i.Actions }},
	{"Configure", "Configure(ctx context.Context, config json.RawMessage) error", "",
		reflect.TypeFor[Configurer](), nil},
}

// check refuses a plugin that routes a kind of request it has no handler for, or whose
// handler or Configure method has another signature than the SDK calls: such a plugin
// would compile, load, and never be called.
func check(p Plugin) error {
	if p == nil {
		return errors.New("sdk: Serve needs a plugin, got nil")
	}
	t := reflect.TypeOf(p)
	info := p.Info()
	var problems []string
	for _, h := range handlerSpecs {
		if t.Implements(h.iface) {
			continue
		}
		var routes []string
		if h.routes != nil {
			routes = h.routes(info)
		}
		why := ""
		if m, ok := t.MethodByName(h.method); ok {
			why = fmt.Sprintf("its %s is %s, not %s", h.method, signature(m.Type), h.signature)
		} else if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(h.iface) {
			why = fmt.Sprintf("%s is declared on *%s: pass a pointer to sdk.Serve", h.method, t.Name())
		} else if len(routes) > 0 {
			why = "it has no method " + h.signature
		}
		switch {
		case why == "":
		case len(routes) > 0:
			problems = append(problems, fmt.Sprintf("it routes %s %q but %s", h.kind, routes, why))
		default:
			problems = append(problems, why)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("sdk: plugin %q cannot serve: %s", info.Name, strings.Join(problems, "; "))
}

// signature writes a method's type without its receiver: func(context.Context, *sdk.Event) (sdk.Reply, error).
func signature(m reflect.Type) string {
	var b strings.Builder
	b.WriteString("func(")
	for i := 1; i < m.NumIn(); i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		b.WriteString(m.In(i).String())
	}
	b.WriteString(")")
	switch m.NumOut() {
	case 0:
	case 1:
		b.WriteString(" " + m.Out(0).String())
	default:
		b.WriteString(" (")
		for i := 0; i < m.NumOut(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(m.Out(i).String())
		}
		b.WriteString(")")
	}
	return b.String()
}
