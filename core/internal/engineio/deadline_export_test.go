package engineio

import "time"

// SetTransportReadDeadline sets a read deadline on the session's websocket, as nbio does
// when it arms its idle timeout late (clearReadDeadline).
func (c *Conn) SetTransportReadDeadline(t time.Time) {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.SetReadDeadline(t)
	}
}
