package wire

// Codes of failed plugin calls, as the client sees them in {success:false, code}.
const (
	// CodeNoHandler: no plugin handles the request's name, or the plugin routed to has no
	// handler of that kind.
	CodeNoHandler = "NO_HANDLER"
	// CodePluginUnavailable: the plugin is restarting, failed, still loading, or exited
	// during the call; also a call whose client went away.
	CodePluginUnavailable = "PLUGIN_UNAVAILABLE"
	// CodePluginTimeout: no answer within the plugin's deadline.
	CodePluginTimeout = "PLUGIN_TIMEOUT"
	// CodePluginError: the handler panicked or failed without a code of its own.
	CodePluginError = "PLUGIN_ERROR"
)

// Codes of the core's refusals of a plugin's host calls (see HostError).
const (
	CodeUnknownSocket   = "UNKNOWN_SOCKET"      // no socket of that id is connected
	CodeInvalidRoom     = "INVALID_ROOM"        // the room name breaks its rule, or is reserved
	CodeRoomLimit       = "ROOM_LIMIT_EXCEEDED" // the socket is in as many rooms as it may be
	CodeInvalidEvent    = "INVALID_EVENT"       // the event name breaks its rule
	CodeHostUnavailable = "HOST_UNAVAILABLE"    // the core serves no host calls
)

// GenericMessage is what a client is told of a failure whose text stays in the server's
// log (an uncoded error, a panic).
const GenericMessage = "Plugin error"

// ValidCode reports whether c may be sent to a client as a code:
// ^[A-Z][A-Z0-9_]{0,63}$.
func ValidCode(c string) bool {
	if c == "" || len(c) > 64 || c[0] < 'A' || c[0] > 'Z' {
		return false
	}
	for i := 1; i < len(c); i++ {
		if b := c[i]; !(b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}
