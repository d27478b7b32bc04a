// Package sdk is what a plugin author imports. A plugin is a small program whose
// main is one call, sdk.Serve(p): p describes itself (Info) and implements only the
// handlers it needs (EventHandler, MessageHandler, ActionHandler, Configurer).
// Each handler gets an event struct in and returns a reply struct out; its context
// carries the core's deadline and a Host (HostFrom) to emit to users and rooms,
// join and leave rooms, and disconnect sockets.
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
// The wire protocol (gRPC through hashicorp/go-plugin) stays out of sight.
package sdk
