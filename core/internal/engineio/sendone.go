package engineio

// SendOne is Send of a single message. Through an interface, Send's variadic slice
// escapes and costs an allocation on every call; a socket's replies and events are
// mostly one message each, so they come here.
func (c *Conn) SendOne(m *Message) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if !c.sendLocked(m) {
		return c.overflowLocked()
	}
	c.mu.Unlock()
	return nil
}
