package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/redistest"
)

// recordingAdmin is the admin side of a link: it keeps what it receives and answers every
// request with its name.
type recordingAdmin struct {
	name string
	got  chan string
}

func (r *recordingAdmin) AdminMessage(from string, body json.RawMessage) {
	r.got <- string(body)
}

func (r *recordingAdmin) AdminRequest(from string, body json.RawMessage) (json.RawMessage, error) {
	return json.Marshal(r.name + " answers " + string(body))
}

// TestAdminLink: two nodes' admin links hear each other's messages (not their own),
// answer each other's requests, share sessions, and leave no goroutine once closed.
func TestAdminLink(t *testing.T) {
	addr := redistest.Addr(t)
	base := runtime.NumGoroutine()
	prefix := redistest.Prefix(t, "rt-unit-admin")
	type node struct {
		a    *Adapter
		l    *AdminLink
		recv *recordingAdmin
	}
	mk := func(name string) node {
		a, err := New(&localOnly{sent: make(chan string, 8)}, func(_, _ []string, _ string, _ ...any) (int, error) { return 0, nil },
			Options{RedisURL: "redis://" + addr + "/0", KeyPrefix: prefix, RequestTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := &recordingAdmin{name: name, got: make(chan string, 8)}
		l := a.NewAdminLink(r)
		if err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return node{a, l, r}
	}
	x, y := mk("x"), mk("y")

	if err := x.l.Publish(json.RawMessage(`{"t":"stats"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-y.recv.got:
		if got != `{"t":"stats"}` {
			t.Fatalf("y got %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("y did not hear x")
	}

	answers, complete, err := x.l.Ask(json.RawMessage(`"hello"`))
	if err != nil || !complete || len(answers) != 1 {
		t.Fatalf("ask: %d answers, complete %v, err %v", len(answers), complete, err)
	}
	var s string
	if err := json.Unmarshal(answers[0], &s); err != nil || s != `y answers "hello"` {
		t.Fatalf("answer %s (%v)", answers[0], err)
	}
	select {
	case got := <-x.recv.got:
		t.Fatalf("x heard its own message: %s", got)
	default:
	}

	h := sha256.Sum256([]byte(prefix + "-session"))
	if ok, err := y.l.SessionExists(h); err != nil || ok {
		t.Fatalf("unknown session: %v %v", ok, err)
	}
	if err := x.l.SaveSession(h, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := y.l.SessionExists(h); err != nil || !ok {
		t.Fatalf("shared session: %v %v", ok, err)
	}
	_ = x.a.client.Del(context.Background(), x.l.adminSessionKey(h)).Err()

	// Neither node has sockets: the other answers with none, at once.
	ids, complete, err := x.l.SocketIDs(nil)
	if err != nil || !complete || len(ids) != 0 {
		t.Fatalf("socket ids: %v %v %v", ids, complete, err)
	}

	for _, n := range []node{x, y} {
		if err := n.l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	waitGoroutines(t, base)
}
