package admin

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rtserver/rtserver/core/internal/cluster"
	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/redistest"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// BenchmarkClusterEvent is what a socket event costs the goroutine that reports it on a
// clustered node: unwatched (nobody logged in anywhere), and watched from another node
// (encoded and queued for the admin channel; the publish runs on its own goroutine).
func BenchmarkClusterEvent(b *testing.B) {
	url := redistest.URL(b)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	io := socketio.NewServer(socketio.Options{})
	a, err := New(Options{PasswordHash: hash, IO: io})
	if err != nil {
		b.Fatal(err)
	}
	ad, err := cluster.New(hub.NewMemoryAdapter(io), io.EmitTo, cluster.Options{
		RedisURL: url, KeyPrefix: redistest.Prefix(b, "rt-bench-admin")})
	if err != nil {
		b.Fatal(err)
	}
	if err := ad.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	a.Link(ad.NewAdminLink(a), "bench")
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = a.Close()
		_ = ad.Close()
	})
	args := []any{"/", "AbCdEfGhIjKlMnOpQrSt", []any{"chat:message", json.RawMessage(`{"room":"lobby","text":"hello there"}`)}, timestamp()}
	report := func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if a.watched() {
				a.broadcast("event_received", args...)
			}
		}
	}
	b.Run("unwatched", report)
	b.Run("watched_remotely", func(b *testing.B) {
		a.remoteUntil.Store(time.Now().Add(time.Hour).UnixNano())
		defer a.remoteUntil.Store(0)
		report(b)
	})
}
