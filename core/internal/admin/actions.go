package admin

import (
	"encoding/json"
	"errors"
	"unicode"
	"unicode/utf8"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// maxNameLen bounds the room and event names the UI may use, as the hub bounds clients'.
const maxNameLen = 128

// errReadOnly answers an action in read-only mode.
var errReadOnly = errors.New("read-only: actions are turned off")

// registerActions installs the UI's actions. Each runs off the socket's handler (adapter
// calls may wait on other nodes), at most maxActions at once per Admin.
func (a *Admin) registerActions(s *socketio.Socket) {
	for _, ev := range []string{"join", "leave", "_disconnect", "emit"} {
		s.On(ev, func(s *socketio.Socket, args socketio.Args, ack socketio.Ack) {
			if a.o.ReadOnly {
				a.log.Warn("admin action refused: read-only", "action", ev)
				if ack != nil {
					_ = ack(map[string]string{"error": errReadOnly.Error()})
				}
				return
			}
			select {
			case a.actions <- struct{}{}:
			default:
				a.log.Warn("admin action dropped: too many at once", "action", ev)
				return
			}
			go func() {
				defer func() { <-a.actions }()
				err := a.act(ev, args.Raw)
				if err != nil {
					a.log.Info("admin action refused", "action", ev, "error", err)
				}
				if ack != nil {
					if err != nil {
						_ = ack(map[string]string{"error": err.Error()})
					} else {
						_ = ack(map[string]bool{"ok": true})
					}
				}
			}()
		})
	}
}

func str(raw []json.RawMessage, i int) (string, bool) {
	if i >= len(raw) {
		return "", true // absent: no filter
	}
	var v *string
	if json.Unmarshal(raw[i], &v) != nil {
		return "", false
	}
	if v == nil {
		return "", true
	}
	return *v, true
}

func validName(n string) bool {
	if n == "" || len(n) > maxNameLen || !utf8.ValidString(n) || internalRoom(n) {
		return false
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func (a *Admin) act(ev string, raw []json.RawMessage) error {
	nsp, ok := str(raw, 0)
	if !ok || nsp != "/" {
		return errors.New("unknown namespace: only \"/\" is served")
	}
	switch ev {
	case "join", "leave":
		room, ok1 := str(raw, 1)
		filter, ok2 := str(raw, 2)
		if !ok1 || !ok2 || !validName(room) {
			return errors.New("invalid room")
		}
		// Through the adapter: in a cluster a room named after a socket of another node
		// is reserved too.
		if ev == "join" && a.fan.Reserved(room) {
			return errors.New("room is another socket's own room")
		}
		for _, id := range a.targets(filter) {
			var err error
			if ev == "join" {
				err = a.fan.Join(id, room)
			} else {
				err = a.fan.Leave(id, room)
			}
			if err != nil && !errors.Is(err, hub.ErrUnknownSocket) {
				return err
			}
		}
	case "_disconnect":
		filter, ok := str(raw, 2)
		if !ok {
			return errors.New("invalid filter")
		}
		for _, id := range a.targets(filter) {
			if err := a.fan.Disconnect(id); err != nil && !errors.Is(err, hub.ErrUnknownSocket) {
				return err
			}
		}
	case "emit":
		filter, ok1 := str(raw, 1)
		event, ok2 := str(raw, 2)
		if !ok1 || !ok2 || !validName(event) {
			return errors.New("invalid event name")
		}
		data := json.RawMessage("null")
		if len(raw) > 3 {
			data = raw[3]
		}
		to := hub.Target{}
		if filter != "" {
			to.Rooms = []string{filter}
		}
		if _, err := a.fan.Broadcast(to, event, data); err != nil {
			return err
		}
	}
	return nil
}

// targets names the sockets an action is for: the members of the filter room (a socket
// id is a room of one), or every socket without a filter, on this node and, in a cluster,
// on the others. A filter with no member found is still tried as a socket id: the adapter
// reaches sockets on other nodes.
func (a *Admin) targets(filter string) []string {
	var ids []string
	if filter == "" {
		for _, s := range a.o.IO.Sockets() {
			ids = append(ids, s.ID())
		}
	} else {
		ids = a.o.IO.RoomMembers(filter)
	}
	if a.link != nil {
		var rooms []string
		if filter != "" {
			rooms = []string{filter}
		}
		remote, complete, err := a.link.SocketIDs(rooms)
		if err != nil || !complete {
			a.log.Warn("admin action: some nodes' sockets not found in time", "error", err)
		}
		ids = append(ids, remote...)
	}
	if filter != "" && len(ids) == 0 {
		return []string{filter}
	}
	return ids
}
