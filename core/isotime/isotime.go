// Package isotime formats times the way the SPEC's timestamps are written: as
// JavaScript's Date.prototype.toISOString does (UTC, milliseconds, a "Z"). The rule is
// the plugin wire's (wire.TimeLayout): events sent through the SDK carry the same.
package isotime

import (
	"time"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Layout is the time.Format layout of those timestamps.
const Layout = wire.TimeLayout

// Format writes t in Layout, in UTC.
func Format(t time.Time) string { return wire.FormatTime(t) }
