package main

import (
	"context"

	"github.com/rtserver/rtserver/sdk"
)

type hello struct{}

func (hello) Info() sdk.Info {
	return sdk.Info{Name: "hello", Version: "1.0.0", Events: []string{"hello"}}
}

func (hello) OnEvent(ctx context.Context, e sdk.Event) (sdk.Reply, error) {
	return sdk.Reply{Data: map[string]string{"hello": e.UserID}}, nil
}

func main() { sdk.Serve(hello{}) }
