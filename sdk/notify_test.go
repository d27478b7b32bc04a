package sdk

import (
	"context"
	"testing"
)

type recordingHost struct {
	noHost
	user, event string
	data        any
}

func (h *recordingHost) EmitToUser(_ context.Context, userID, event string, data any) (int, error) {
	h.user, h.event, h.data = userID, event, data
	return 2, nil
}

func TestNotify(t *testing.T) {
	h := &recordingHost{}
	ctx := WithHost(context.Background(), h)
	n, err := Notify(ctx, "u1", "Hi", "there", NotificationWarning)
	if err != nil || n != 2 || h.user != "u1" || h.event != "system:notification" {
		t.Fatalf("n=%d err=%v host=%+v", n, err, h)
	}
	got := h.data.(Notification)
	if got.Type != "warning" || got.Title != "Hi" || len(got.Timestamp) != len("2006-01-02T15:04:05.000Z") {
		t.Fatalf("%+v", got)
	}
	if _, err := Notify(ctx, "u1", "t", "m", "urgent"); err == nil {
		t.Fatal("bad type accepted")
	}
}
