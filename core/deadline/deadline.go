// Package deadline hands out shared deadline contexts: see wire.Deadlines, which the plugin
// host and the SDK use.
package deadline

import "github.com/rtserver/rtserver/proto/plugin/v1/wire"

// Cache is wire.Deadlines.
type Cache = wire.Deadlines
