package pluginhost

import (
	"sync"

	"github.com/rtserver/rtserver/core/internal/dispatch"
	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// maxCodeLabels bounds the distinct codes of one plugin counted under their own
// name in socket_server_plugin_calls_total; later ones are counted as otherLabel.
const (
	maxCodeLabels = 32
	otherLabel    = "OTHER"
)

// maxLoggedDetail bounds the text of one plugin failure in the log.
const maxLoggedDetail = 4 << 10

// pluginError turns a plugin's error reply into what the client sees. A code the plugin
// chose (sdk.Error) is passed on with its message. An uncoded failure or a panic
// (PLUGIN_ERROR), a PLUGIN_TIMEOUT of the plugin's own, or a code that is not a valid
// code becomes PLUGIN_ERROR (PLUGIN_TIMEOUT) with a fixed message, and the plugin's text
// is logged with the request id.
func (h *Host) pluginError(s *slot, req *dispatch.Request, e *pluginv1.Error) error {
	code := e.GetCode()
	switch {
	case code == dispatch.CodePluginTimeout:
	case code == dispatch.CodePluginError || code == dispatch.CodePluginUnavailable || !wire.ValidCode(code):
		code = dispatch.CodePluginError
	default:
		return &dispatch.Error{Code: code, Message: e.GetMessage()}
	}
	detail, shown := e.GetMessage(), e.GetCode()
	if len(detail) > maxLoggedDetail {
		detail = detail[:maxLoggedDetail] + "... (truncated)"
	}
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	h.log.Warn("plugin handler failed", "plugin", s.name, "kind", req.Kind.String(),
		"request_id", req.RequestID, "code", displayName(shown), "error", detail)
	if code == dispatch.CodePluginTimeout {
		return dispatch.Errorf(code, "plugin %s did not answer in time", s.name)
	}
	return &dispatch.Error{Code: code, Message: wire.GenericMessage}
}

// codeLabels is the set of codes one plugin's calls are counted under.
type codeLabels struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// of is the label for code: the core's own codes always, a plugin's first
// maxCodeLabels distinct codes, then otherLabel.
func (l *codeLabels) of(code string) string {
	switch code {
	case dispatch.CodeNoHandler, dispatch.CodePluginUnavailable, dispatch.CodePluginTimeout, dispatch.CodePluginError:
		return code
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[code]; ok {
		return code
	}
	if len(l.seen) >= maxCodeLabels {
		return otherLabel
	}
	if l.seen == nil {
		l.seen = map[string]struct{}{}
	}
	l.seen[code] = struct{}{}
	return code
}
