package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// e2eServer is the server side of testdata/node/socketio.test.js.
func e2eServer(t *testing.T) string {
	_, url := startServer(t, Options{}, func(s *Server) {
		s.Use(func(so *Socket, auth json.RawMessage) error {
			var a struct{ Token string }
			_ = json.Unmarshal(auth, &a)
			if a.Token == "bad" {
				return &ConnectError{Message: "unauthorized", Data: map[string]any{"code": "UNAUTHORIZED"}}
			}
			so.SetSession(a.Token)
			return nil
		})
		s.OnConnection(func(so *Socket) {
			str := func(raw json.RawMessage) string {
				var v string
				_ = json.Unmarshal(raw, &v)
				return v
			}
			so.On("whoami", func(so *Socket, _ Args, ack Ack) {
				_ = ack(map[string]any{"id": so.ID(), "token": so.Session(), "transport": so.Transport()})
			})
			so.On("echo", func(so *Socket, args Args, _ Ack) { _ = so.Emit("echo:reply", args.Values()...) })
			so.On("ack", func(_ *Socket, args Args, ack Ack) { _ = ack(args.Values()...) })
			so.On("emptyack", func(_ *Socket, _ Args, ack Ack) { _ = ack() })
			so.On("ask", func(so *Socket, args Args, _ Ack) {
				_ = so.EmitWithAckFunc("question", 5*time.Second, func(a Args, err error) {
					if err != nil {
						_ = so.Emit("answer", map[string]any{"error": err.Error()})
						return
					}
					_ = so.Emit("answer", map[string]any{"args": a.Values()})
				}, args.Values()...)
			})
			so.On("binary", func(_ *Socket, args Args, ack Ack) {
				sizes := []int{}
				for _, a := range args.Attachments {
					sizes = append(sizes, len(a))
				}
				var first []byte
				if len(args.Attachments) > 0 {
					first = args.Attachments[0]
				}
				_ = ack(map[string]any{"sizes": sizes, "first": first})
			})
			so.On("sendbinary", func(so *Socket, _ Args, _ Ack) {
				_ = so.Emit("binary:reply", map[string]any{"buf": []byte{9, 8, 7}, "list": []any{"x", []byte{6}}}, []byte{5})
			})
			so.On("join", func(so *Socket, args Args, ack Ack) { so.Join(str(args.Raw[0])); _ = ack() })
			so.On("leave", func(so *Socket, args Args, ack Ack) { so.Leave(str(args.Raw[0])); _ = ack() })
			so.On("toRoom", func(_ *Socket, args Args, ack Ack) {
				var rooms, except []string
				if r := str(args.Raw[0]); r != "" {
					rooms = []string{r}
				}
				_ = json.Unmarshal(args.Raw[1], &except)
				n, err := s.EmitTo(rooms, except, "news", args.Raw[2])
				if err != nil {
					t.Error(err)
				}
				_ = ack(n)
			})
			so.On("drop", func(so *Socket, _ Args, _ Ack) { so.cl.conn.Close(engineio.ReasonForcedClose) })
			so.On("kick", func(so *Socket, _ Args, _ Ack) { so.Disconnect() })
		})
	})
	return url
}

// recoveryServer is the server side of the recovery cases: connection state recovery on.
func recoveryServer(t *testing.T) string {
	_, url := startServer(t, Options{Recovery: &RecoveryOptions{MaxDisconnection: 30 * time.Second}}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			if !so.Recovered() {
				so.Join("rec-room")
				so.SetSession(so.ID())
			}
			so.On("hello", func(so *Socket, _ Args, _ Ack) { _ = so.Emit("welcome", "w") })
			so.On("state", func(so *Socket, _ Args, ack Ack) {
				_ = ack(map[string]any{"rooms": so.Rooms(), "first": so.Session(), "recovered": so.Recovered()})
			})
			so.On("dropAndQueue", func(so *Socket, _ Args, _ Ack) {
				// The socket leaves once this handler returns; what is emitted meanwhile
				// and after is missed and must be replayed on recovery.
				so.cl.conn.Close(engineio.ReasonForcedClose)
				_, _ = s.EmitTo([]string{"rec-room"}, nil, "missed", "m1")
				_ = so.Emit("missed", "m2")
				go func() {
					time.Sleep(20 * time.Millisecond)
					_, _ = s.EmitTo([]string{"rec-room"}, nil, "missed", "m3")
				}()
			})
		})
	})
	return url
}

// TestNodeClient runs testdata/node with the official socket.io-client@4 (node --test)
// against a real server, over websocket, polling and the upgrade.
func TestNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the official socket.io-client suite")
	}
	dir, _ := filepath.Abs(filepath.Join("testdata", "node"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client")); errors.Is(err, os.ErrNotExist) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("node_modules missing and npm is not installed")
		}
		args := []string{"ci", "--no-audit", "--no-fund"}
		if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err != nil {
			args[0] = "install"
		}
		cmd := exec.CommandContext(ctx, npm, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("npm %s failed (offline?): %v\n%s", args[0], err, out)
		}
	}
	url := e2eServer(t)
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "--test-concurrency=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SERVER_URL="+url, "RECOVERY_URL="+recoveryServer(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
