package wire

import (
	"testing"
	"time"
)

func TestFormatTime(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	got := FormatTime(time.Date(2026, 11, 25, 23, 4, 5, 67_890_000, paris))
	if want := "2026-11-25T22:04:05.067Z"; got != want { // what new Date(...).toISOString() gives
		t.Fatalf("FormatTime = %q, want %q", got, want)
	}
}
