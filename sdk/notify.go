package sdk

import (
	"context"
	"fmt"
	"time"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Notification types, as the client's system:notification event defines them.
const (
	NotificationInfo    = "info"
	NotificationWarning = "warning"
	NotificationError   = "error"
)

// Notification is the payload of the system:notification event.
type Notification struct {
	Title     string `json:"title"`
	Message   string `json:"message"`
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
}

// Notify sends a system:notification {title, message, type, timestamp} to every registered
// socket of a user, through the host; typ must be info, warning or error. It returns the
// number of sockets reached.
func Notify(ctx context.Context, userID, title, message, typ string) (int, error) {
	switch typ {
	case NotificationInfo, NotificationWarning, NotificationError:
	default:
		return 0, fmt.Errorf("sdk: notification type %q: want info, warning or error", typ)
	}
	n := Notification{Title: title, Message: message, Type: typ,
		Timestamp: wire.FormatTime(time.Now())}
	return HostFrom(ctx).EmitToUser(ctx, userID, "system:notification", n)
}
