// Command chat is an example plugin: a room chat with history and typing
// indicators, kept in memory.
//
//   - client:message of type "chat" is stored (last N per room) and sent to every
//     room the sender is in (or only metadata.room, when given) as "chat:message".
//   - client:action "history" with params {room, limit} returns the room's last
//     messages; the asking socket must be in the room.
//   - client:event "typing" with data {room?, typing} is relayed to the room(s),
//     except the sender, as "chat:typing".
//
// Configuration (the plugin block's config): {"history": N}, default 100.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rtserver/rtserver/sdk"
)

var version = "dev"

type chatMessage struct {
	ID       string          `json:"id"`
	Room     string          `json:"room"`
	UserID   string          `json:"userId"`
	SocketID string          `json:"socketId"`
	Content  string          `json:"content"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	Time     int64           `json:"timestamp"` // unix milliseconds
}

type chat struct {
	mu    sync.Mutex
	keep  int
	rooms map[string][]chatMessage // each at most keep long, oldest first
}

func newChat() *chat { return &chat{keep: 100, rooms: make(map[string][]chatMessage)} }

func (c *chat) Info() sdk.Info {
	return sdk.Info{Name: "chat", Version: version,
		Events: []string{"typing"}, Messages: []string{"chat"}, Actions: []string{"history"}}
}

func (c *chat) Configure(_ context.Context, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var cfg struct {
		History int `json:"history"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("chat: config: %w", err)
	}
	if cfg.History > 0 {
		c.mu.Lock()
		c.keep = cfg.History
		c.mu.Unlock()
	}
	return nil
}

// targets is the rooms a request addresses: the named room if the sender is in
// it, otherwise every room the sender is in.
func targets(cl sdk.Client, room string) ([]string, error) {
	if room == "" {
		return cl.Rooms, nil
	}
	if !cl.InRoom(room) {
		return nil, sdk.Error("NOT_IN_ROOM", "not in room "+room)
	}
	return []string{room}, nil
}

func (c *chat) OnMessage(ctx context.Context, m sdk.Message) (sdk.Reply, error) {
	if strings.TrimSpace(m.Content) == "" {
		return sdk.Reply{}, sdk.Error(sdk.CodeBadRequest, "content is empty")
	}
	var meta struct {
		Room string `json:"room"`
	}
	_ = json.Unmarshal(m.Metadata, &meta)
	rooms, err := targets(m.Client, meta.Room)
	if err != nil {
		return sdk.Reply{}, err
	}
	now := time.Now().UnixMilli()
	host := sdk.HostFrom(ctx)
	reached := 0
	for _, room := range rooms {
		msg := chatMessage{ID: m.MessageID, Room: room, UserID: m.UserID, SocketID: m.SocketID,
			Content: m.Content, Metadata: m.Metadata, Time: now}
		c.store(msg)
		n, err := host.EmitToRoom(ctx, room, "chat:message", msg, "")
		if err != nil {
			return sdk.Reply{}, fmt.Errorf("fan out to %s: %w", room, err)
		}
		reached += n
	}
	return sdk.Reply{Data: map[string]any{"rooms": rooms, "delivered": reached}}, nil
}

func (c *chat) store(m chatMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := append(c.rooms[m.Room], m)
	if len(h) > c.keep {
		h = append(h[:0:0], h[len(h)-c.keep:]...)
	}
	c.rooms[m.Room] = h
}

func (c *chat) OnAction(_ context.Context, a sdk.Action) (sdk.Reply, error) {
	var p struct {
		Room  string `json:"room"`
		Limit int    `json:"limit"`
	}
	if err := json.Unmarshal(a.Params, &p); err != nil || p.Room == "" {
		return sdk.Reply{}, sdk.Error(sdk.CodeBadRequest, "params must be {room, limit}")
	}
	if !a.InRoom(p.Room) {
		return sdk.Reply{}, sdk.Error("NOT_IN_ROOM", "not in room "+p.Room)
	}
	c.mu.Lock()
	h := c.rooms[p.Room]
	if p.Limit <= 0 || p.Limit > len(h) {
		p.Limit = len(h)
	}
	out := append([]chatMessage{}, h[len(h)-p.Limit:]...)
	c.mu.Unlock()
	return sdk.Reply{Data: map[string]any{"room": p.Room, "messages": out}}, nil
}

func (c *chat) OnEvent(ctx context.Context, e sdk.Event) (sdk.Reply, error) {
	var d struct {
		Room   string `json:"room"`
		Typing *bool  `json:"typing"`
	}
	_ = json.Unmarshal(e.Data, &d)
	typing := d.Typing == nil || *d.Typing
	rooms, err := targets(e.Client, d.Room)
	if err != nil {
		return sdk.Reply{}, err
	}
	host := sdk.HostFrom(ctx)
	for _, room := range rooms {
		ev := map[string]any{"room": room, "userId": e.UserID, "typing": typing}
		if _, err := host.EmitToRoom(ctx, room, "chat:typing", ev, e.SocketID); err != nil {
			return sdk.Reply{}, fmt.Errorf("relay typing to %s: %w", room, err)
		}
	}
	return sdk.Reply{Data: map[string]any{"rooms": rooms}}, nil
}

func main() { sdk.Serve(newChat()) }
