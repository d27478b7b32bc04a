package socketio

// UseHandlers installs t as the socket's whole event handler table, replacing the handlers
// set so far. The table is shared, not copied: an application that gives every socket of a
// namespace the same handlers keeps one table for all of them instead of one map per
// socket (a map of a few closures is several hundred bytes an idle connection would hold).
// The caller must not change t afterwards; a later On on this socket copies it first.
func (s *Socket) UseHandlers(t map[string]EventHandler) {
	s.mu.Lock()
	s.handlers = t
	s.sharedTable = true
	s.mu.Unlock()
	s.cl.srv.names.addKeys(t)
}

func copyHandlers(t map[string]EventHandler, extra int) map[string]EventHandler {
	c := make(map[string]EventHandler, len(t)+extra)
	for k, v := range t {
		c[k] = v
	}
	return c
}
