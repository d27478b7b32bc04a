package pluginv1

// ApproxSize is about the encoded size of m, for the batch bounds of package wire.
func (m *HandleRequest) ApproxSize() int {
	n := len(m.Payload) + len(m.Name) + len(m.RequestId) + len(m.MessageId) + len(m.SocketId) + len(m.UserId) + 32
	for _, r := range m.Rooms {
		n += len(r) + 2
	}
	return n
}

// ApproxSize is about the encoded size of r, for the batch bounds of package wire.
func (r *HandleResponse) ApproxSize() int {
	return len(r.Data) + len(r.Error.GetMessage()) + 16
}
