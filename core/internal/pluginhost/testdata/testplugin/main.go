// Command testplugin is a plugin for pluginhost's tests: event "t" behaves as
// its data asks: {"sleep_ms": N} sleeps (returning early if the deadline
// passes), {"exit": N} exits the process, {"panic": "x"} panics, {"error":
// "CODE"} returns a coded error, {"fail": "text"} returns a plain error, {"emit": "room"}
// emits to that room through the host, {"print": "x"} writes x to stdout and stderr.
// {"mark": "path"} writes "started" to path when the handler starts and the context's
// error when the handler is cancelled while it sleeps. {"join": {"socket", "room"}} joins
// through the host and replies which sdk error the refusal is. {"later": "room"} emits to
// room from a goroutine after the handler returned, first with the handler's ended context
// and then with its own, and reports both outcomes in a second emit to room+"-result".
// Every other reply carries the time left before the deadline and the pid.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rtserver/rtserver/sdk"
)

var version = "dev"

type tp struct{}

func (tp) Info() sdk.Info {
	return sdk.Info{Name: "testplugin", Version: version, Events: []string{"t"}, Actions: []string{"t"}}
}

type ask struct {
	SleepMS int    `json:"sleep_ms"`
	Exit    *int   `json:"exit"`
	Panic   string `json:"panic"`
	Error   string `json:"error"`
	Fail    string `json:"fail"`
	Emit    string `json:"emit"`
	Print   string `json:"print"`
	Mark    string `json:"mark"`
	Join    *struct {
		Socket string `json:"socket"`
		Room   string `json:"room"`
	} `json:"join"`
	Later string `json:"later"`
}

func (tp) OnEvent(ctx context.Context, e sdk.Event) (sdk.Reply, error) { return run(ctx, e.Data) }

func (tp) OnAction(ctx context.Context, a sdk.Action) (sdk.Reply, error) { return run(ctx, a.Params) }

func run(ctx context.Context, data json.RawMessage) (sdk.Reply, error) {
	var a ask
	_ = json.Unmarshal(data, &a)
	left := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	if a.Print != "" {
		fmt.Println("stdout:", a.Print)
		fmt.Fprintln(os.Stderr, "stderr:", a.Print)
	}
	if a.Exit != nil {
		sdk.Logger().Info("exiting as asked", "code", *a.Exit)
		os.Exit(*a.Exit)
	}
	if a.Panic != "" {
		panic(a.Panic)
	}
	if a.Fail != "" {
		return sdk.Reply{}, errors.New(a.Fail)
	}
	if a.Error != "" {
		return sdk.Reply{}, sdk.Error(a.Error, "asked to fail")
	}
	if a.Mark != "" {
		_ = os.WriteFile(a.Mark, []byte("started"), 0o644)
	}
	if a.SleepMS > 0 {
		select {
		case <-time.After(time.Duration(a.SleepMS) * time.Millisecond):
		case <-ctx.Done():
			if a.Mark != "" {
				_ = os.WriteFile(a.Mark, []byte(ctx.Err().Error()), 0o644)
			}
			return sdk.Reply{}, ctx.Err()
		}
	}
	if a.Join != nil {
		err := sdk.HostFrom(ctx).JoinRoom(ctx, a.Join.Socket, a.Join.Room)
		out := map[string]any{"ok": err == nil,
			"unknown_socket": errors.Is(err, sdk.ErrUnknownSocket),
			"invalid_room":   errors.Is(err, sdk.ErrInvalidRoom),
			"room_limit":     errors.Is(err, sdk.ErrRoomLimit)}
		var he *sdk.HostError
		if errors.As(err, &he) {
			out["code"], out["message"] = he.Code, he.Message
		}
		return sdk.Reply{Data: out}, nil
	}
	if a.Later != "" {
		host, handlerCtx := sdk.HostFrom(ctx), ctx
		go func() {
			<-handlerCtx.Done() // the handler has returned
			_, errEnded := host.EmitToRoom(handlerCtx, a.Later, "test:later", nil, "")
			_, errOwn := host.EmitToRoom(context.Background(), a.Later, "test:later", nil, "")
			_, _ = host.EmitToRoom(context.Background(), a.Later+"-result", "test:later", map[string]any{
				"ended_is_canceled": errors.Is(errEnded, context.Canceled), "own_ok": errOwn == nil}, "")
		}()
		return sdk.Reply{}, nil
	}
	if a.Emit != "" {
		n, err := sdk.HostFrom(ctx).EmitToRoom(ctx, a.Emit, "test:emit", map[string]string{"from": "testplugin"}, "")
		if err != nil {
			return sdk.Reply{}, err
		}
		return sdk.Reply{Data: map[string]any{"emitted": n}}, nil
	}
	return sdk.Reply{Data: map[string]any{"left_ms": left.Milliseconds(), "pid": os.Getpid(), "version": version}}, nil
}

func main() { sdk.Serve(tp{}) }
