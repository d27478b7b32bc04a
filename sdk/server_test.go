package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
)

type full struct{ host Host }

func (full) Info() Info { return Info{Name: "full", Version: "1", Events: []string{"*"}} }

func (f *full) OnEvent(ctx context.Context, e Event) (Reply, error) {
	switch e.Type {
	case "panic":
		panic("boom")
	case "coded":
		return Reply{}, Error("MY_CODE", "nope")
	case "plain":
		return Reply{}, errors.New("plain failure")
	case "deadline":
		dl, ok := ctx.Deadline()
		return Reply{Data: map[string]any{"has": ok, "left": time.Until(dl) > 0}}, nil
	case "host":
		f.host = HostFrom(ctx)
		return Reply{}, nil
	}
	return Reply{Data: map[string]any{"type": e.Type, "data": e.Data, "user": e.UserID, "inLobby": e.InRoom("lobby")}}, nil
}

func (full) OnAction(_ context.Context, a Action) (Reply, error) {
	return Reply{Data: json.RawMessage(`{"action":"` + a.Action + `","params":` + string(a.Params) + `}`)}, nil
}

func handle(t *testing.T, s *server, kind pluginv1.Kind, name, payload string, timeout time.Duration) *pluginv1.HandleResponse {
	t.Helper()
	r, err := s.Handle(context.Background(), &pluginv1.HandleRequest{Id: 7, Kind: kind, Name: name, UserId: "u1",
		Rooms: []string{"lobby"}, Payload: []byte(payload), TimeoutNanos: int64(timeout)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Id != 7 {
		t.Fatalf("id %d", r.Id)
	}
	return r
}

func TestHandle(t *testing.T) {
	f := &full{}
	s := newServer(f, slog.New(slog.DiscardHandler), nil)
	ev := pluginv1.Kind_KIND_EVENT
	cases := []struct {
		name      string
		kind      pluginv1.Kind
		payload   string
		wantCode  string
		wantData  string
		wantInMsg string
	}{
		{"ok", ev, `{"type":"ok","data":{"a":1}}`, "", `{"data":{"a":1},"inLobby":true,"type":"ok","user":"u1"}`, ""},
		{"panic", ev, `{"type":"panic"}`, CodePluginError, "", "boom"},
		{"coded", ev, `{"type":"coded"}`, "MY_CODE", "", "nope"},
		{"plain", ev, `{"type":"plain"}`, CodePluginError, "", "plain failure"},
		{"deadline", ev, `{"type":"deadline"}`, "", `{"has":true,"left":true}`, ""},
		{"malformed payload still routed by name", ev, `not json`, "", `{"data":null,"inLobby":true,"type":"malformed payload still routed by name","user":"u1"}`, ""},
		{"action raw reply", pluginv1.Kind_KIND_ACTION, `{"action":"go","params":{"x":2}}`, "", `{"action":"go","params":{"x":2}}`, ""},
		{"no message handler", pluginv1.Kind_KIND_MESSAGE, `{"type":"m"}`, CodeNoHandler, "", "full"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := handle(t, s, c.kind, c.name, c.payload, time.Second)
			if c.wantCode != "" {
				if r.Error.GetCode() != c.wantCode || !strings.Contains(r.Error.GetMessage(), c.wantInMsg) {
					t.Fatalf("error %v", r.Error)
				}
				return
			}
			if r.Error != nil || string(r.Data) != c.wantData {
				t.Fatalf("reply %s, error %v", r.Data, r.Error)
			}
		})
	}
	// Without a core connection, the handler still gets a Host; its calls fail.
	handle(t, s, ev, "host", `{"type":"host"}`, time.Second)
	if _, err := f.host.EmitToRoom(context.Background(), "r", "e", nil, ""); err == nil {
		t.Fatal("emit without a core succeeded")
	}
}

func TestEncode(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{nil, ""},
		{json.RawMessage(`{"a":1}`), `{"a":1}`},
		{map[string]int{"b": 2}, `{"b":2}`},
	} {
		b, err := encode(c.in)
		if err != nil || string(b) != c.want {
			t.Fatalf("encode(%v) = %s, %v", c.in, b, err)
		}
	}
	if _, err := encode(make(chan int)); err == nil {
		t.Fatal("encoding a channel worked")
	}
}
