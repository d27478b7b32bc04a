package hub

import (
	"encoding/json"
	"errors"
)

// storedSession is the part of a socket's session that connection state recovery carries
// to another node (socketio.RecoveryOptions.MarshalSession): who the socket is and whether
// it registered. Everything else starts afresh on recovery, as in begin.
type storedSession struct {
	UserID     string `json:"userId,omitempty"`
	Registered bool   `json:"registered,omitempty"`
}

// MarshalSession encodes the hub's session of a socket for the shared recovery store.
func MarshalSession(v any) (json.RawMessage, error) {
	ss, ok := v.(*session)
	if !ok {
		return nil, errors.New("hub: not a hub session")
	}
	return json.Marshal(storedSession{UserID: ss.userID, Registered: ss.isRegistered()})
}

// UnmarshalSession decodes what MarshalSession wrote: a session Admit and begin take the
// user and the registration from.
func UnmarshalSession(data json.RawMessage) (any, error) {
	var st storedSession
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	return &session{userID: st.UserID, registered: st.Registered}, nil
}
