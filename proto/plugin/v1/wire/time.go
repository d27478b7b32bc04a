package wire

import "time"

// TimeLayout is the time.Format layout of the timestamps in events, the core's and those
// sent through the SDK alike: as JavaScript's Date.prototype.toISOString writes them
// (UTC, milliseconds, a "Z").
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime writes t in TimeLayout, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }
