// Package isotime formats times the way the SPEC's timestamps are written: as
// JavaScript's Date.prototype.toISOString does (UTC, milliseconds, a "Z").
package isotime

import "time"

// Layout is the time.Format layout of those timestamps.
const Layout = "2006-01-02T15:04:05.000Z"

// Format writes t in Layout, in UTC.
func Format(t time.Time) string { return t.UTC().Format(Layout) }
