// Package sdk is what a plugin author imports. A plugin is a small program whose
// main is one call, sdk.Serve(p): p describes itself (Info) and implements only the
// handlers it needs (EventHandler, MessageHandler, ActionHandler, Configurer); Serve
// refuses to start a plugin whose Info routes a kind it has no handler for, or whose
// handler has another signature. Each handler gets an event struct in and returns a
// reply struct out; its context carries the plugin's deadline, ends when the client
// disconnects, and carries a Host (HostFrom) to emit to users and rooms, join and leave
// rooms, and disconnect sockets. Logger is the plugin's *slog.Logger.
//
//	type hello struct{}
//
//	func (hello) Info() sdk.Info { return sdk.Info{Name: "hello", Version: "1", Events: []string{"hello"}} }
//
//	func (hello) OnEvent(ctx context.Context, e sdk.Event) (sdk.Reply, error) {
//		return sdk.Reply{Data: map[string]string{"hello": e.UserID}}, nil
//	}
//
//	func main() { sdk.Serve(hello{}) }
//
// The wire protocol (gRPC through hashicorp/go-plugin) stays out of sight, and the
// package imports nothing from the server's core.
package sdk
