//go:build !unix

package engineio

import (
	"net"

	"github.com/hashicorp/go-hclog"
	"github.com/lesismal/nbio"
)

// acceptFence is a no-op off unix: nbio's std-library pollers do not index by fd. See
// fence_unix.go.
type acceptFence struct{ net.Listener }

func newAcceptFence(ln net.Listener, _ hclog.Logger) *acceptFence { return &acceptFence{ln} }

func (f *acceptFence) setEngine(*nbio.Engine) {}

func (f *acceptFence) settle(*nbio.Conn) {}
