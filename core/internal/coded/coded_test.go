package coded

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeOf(t *testing.T) {
	wrapped := fmt.Errorf("joining: %w", New(InvalidRoom, "Room name is reserved"))
	if got := CodeOf(wrapped, PluginError); got != InvalidRoom {
		t.Fatalf("CodeOf(wrapped) = %q", got)
	}
	if got := CodeOf(errors.New("plain"), PluginError); got != PluginError {
		t.Fatalf("CodeOf(plain) = %q", got)
	}
	e := Errorf(RateLimited, "retry in %ds", 3)
	if e.Error() != "RATE_LIMITED: retry in 3s" {
		t.Fatalf("Error() = %q", e.Error())
	}
}
