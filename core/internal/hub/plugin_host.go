package hub

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/rtserver/rtserver/core/internal/coded"
	"github.com/rtserver/rtserver/core/internal/dispatch"
)

var _ dispatch.Host = pluginHost{}

// PluginHost is the dispatch.Host that plugins call back into: emits checked like the
// HTTP API's, room joins checked like a client's.
func (h *Hub) PluginHost() dispatch.Host { return pluginHost{h} }

type pluginHost struct{ h *Hub }

func (p pluginHost) EmitToUser(_ context.Context, userID, event string, data json.RawMessage) (int, error) {
	if err := p.h.checkEventName(event); err != nil {
		return 0, err
	}
	return p.h.PushToUser(userID, event, data), nil
}

func (p pluginHost) EmitToRoom(_ context.Context, room, event string, data json.RawMessage, except string) (int, error) {
	if err := p.h.checkEventName(event); err != nil {
		return 0, err
	}
	return p.h.emitToRoom(room, event, data, except), nil
}

func (p pluginHost) Broadcast(_ context.Context, event string, data json.RawMessage) (int, error) {
	if err := p.h.checkEventName(event); err != nil {
		return 0, err
	}
	return p.h.Broadcast(event, data), nil
}

func (p pluginHost) JoinRoom(_ context.Context, socketID, room string) error {
	if err := p.h.checkRoom(socketID, room); err != nil {
		return err
	}
	return p.h.fan.Join(socketID, room)
}

func (p pluginHost) LeaveRoom(_ context.Context, socketID, room string) error {
	return p.h.fan.Leave(socketID, room)
}

func (p pluginHost) DisconnectSocket(_ context.Context, socketID string) error {
	return p.h.fan.Disconnect(socketID)
}

// checkEventName validates an event name chosen by a plugin.
func (h *Hub) checkEventName(event string) error {
	if isBlank(event) || len(event) > h.opts.MaxEventNameLen || !utf8.ValidString(event) {
		return coded.New(coded.InvalidEvent, "Event name must be a non-empty string within the length limit")
	}
	return nil
}
