package cluster

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRoomSubscriptions: a room's channel is subscribed once a member opens it (a
// broadcast published right after is delivered), stays subscribed through a leave and
// rejoin within the linger, and is unsubscribed once idle; a close reported before its open
// (racing reports) leaves nothing subscribed.
func TestRoomSubscriptions(t *testing.T) {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		if os.Getenv("REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis at %s is required (REQUIRE_REDIS=1) but unreachable: %v", addr, err)
		}
		t.Skipf("no Redis at %s: %v", addr, err)
	} else {
		c.Close()
	}
	prefix := "rt-rooms-" + time.Now().Format("150405.000000000")
	got := make(chan string, 4)
	a, err := New(&localOnly{sent: make(chan string, 4)}, func(rooms, _ []string, event string, _ ...any) (int, error) {
		got <- event
		return 1, nil
	}, Options{RedisURL: "redis://" + addr + "/0", KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	a.rooms = newRoomSubs(a) // as with sockets to watch
	a.rooms.RoomsOpened([]string{"early"})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx := context.Background()
	numsub := func(room string) int64 {
		ch := broadcastChannel(prefix, []string{room})
		return rc.PubSubNumSub(ctx, ch).Val()[ch]
	}
	publish := func(room, event string) {
		msg, err := encodeBroadcast("other", []string{room}, nil, event, json.RawMessage(`1`), "", false)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Publish(ctx, broadcastChannel(prefix, []string{room}), msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(event string) {
		t.Helper()
		select {
		case ev := <-got:
			if ev != event {
				t.Fatalf("got %q, want %q", ev, event)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not delivered", event)
		}
	}
	if numsub("early") != 1 {
		t.Fatal("a room opened before Start is not subscribed")
	}
	a.rooms.RoomsOpened([]string{"r1", "r2"})
	publish("r1", "first") // right after the open returned
	expect("first")
	a.rooms.RoomsClosed([]string{"r1"})
	a.rooms.RoomsOpened([]string{"r1"})
	a.rooms.RoomsClosed([]string{"race"}) // reported before its open
	a.rooms.RoomsOpened([]string{"race"})
	time.Sleep(3 * roomLinger)
	if numsub("r1") != 1 || numsub("r2") != 1 {
		t.Fatal("a room with members was unsubscribed")
	}
	publish("r1", "second")
	expect("second")
	a.rooms.RoomsClosed([]string{"r1", "r2", "early"})
	deadline := time.Now().Add(10 * time.Second)
	for numsub("r1")+numsub("r2")+numsub("race")+numsub("early") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle rooms still subscribed: %v", a.rooms.subscribedChannels())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := a.rooms.subscribedChannels(); len(left) != 0 {
		t.Fatalf("rooms kept: %v", left)
	}
}
