// Command badsig is a plugin for pluginhost's tests whose event handler has the wrong
// signature (a *sdk.Event): it compiles, and sdk.Serve refuses to start it.
package main

import (
	"context"

	"github.com/rtserver/rtserver/sdk"
)

type badsig struct{}

func (badsig) Info() sdk.Info { return sdk.Info{Name: "badsig", Events: []string{"t"}} }

func (badsig) OnEvent(_ context.Context, e *sdk.Event) (sdk.Reply, error) {
	return sdk.Reply{Data: e.Type}, nil
}

func main() { sdk.Serve(badsig{}) }
