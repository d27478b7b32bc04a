// Command echo is an example plugin that answers every event, message and action
// with what it received, and its version, so hot reloads can be seen from outside.
//
//	go build -ldflags "-X main.version=2" -o plugins/echo ./examples/echo
package main

import (
	"context"
	"encoding/json"

	"github.com/rtserver/rtserver/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type echo struct{}

type answer struct {
	Echo     json.RawMessage `json:"echo"`
	Version  string          `json:"version"`
	Kind     string          `json:"kind"`
	Name     string          `json:"name"`
	UserID   string          `json:"userId"`
	SocketID string          `json:"socketId"`
}

func (echo) Info() sdk.Info {
	all := []string{sdk.Wildcard}
	return sdk.Info{Name: "echo", Version: version, Events: all, Messages: all, Actions: all}
}

func (echo) OnEvent(_ context.Context, e sdk.Event) (sdk.Reply, error) {
	return sdk.Reply{Data: answer{e.Raw, version, "event", e.Type, e.UserID, e.SocketID}}, nil
}

func (echo) OnMessage(_ context.Context, m sdk.Message) (sdk.Reply, error) {
	return sdk.Reply{Data: answer{m.Raw, version, "message", m.Type, m.UserID, m.SocketID}}, nil
}

func (echo) OnAction(_ context.Context, a sdk.Action) (sdk.Reply, error) {
	return sdk.Reply{Data: answer{a.Raw, version, "action", a.Action, a.UserID, a.SocketID}}, nil
}

func main() { sdk.Serve(echo{}) }
