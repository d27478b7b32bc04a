// Command testplugin is a plugin for pluginhost's tests: event "t" behaves as
// its data asks: {"sleep_ms": N} sleeps (returning early if the deadline
// passes), {"exit": N} exits the process, {"panic": "x"} panics, {"error":
// "CODE"} returns a coded error, {"fail": "text"} returns a plain error, {"emit": "room"} emits to that room through the
// host, {"print": "x"} writes x to stdout and stderr. Every reply carries the time left before the deadline and the pid.
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
	if a.SleepMS > 0 {
		select {
		case <-time.After(time.Duration(a.SleepMS) * time.Millisecond):
		case <-ctx.Done():
			return sdk.Reply{}, ctx.Err()
		}
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
