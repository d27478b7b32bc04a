package socketio

import "iter"

// The room indexes are sized for the common case of a server with many idle sockets:
// each socket is in one or two rooms of its own (its user's room, say) that no other
// socket shares. A Go map of one entry costs a header and a group of eight slots
// (about 200 bytes for a set of strings, 130 for a set of pointers), so both indexes
// hold small sets inline and turn to a map only when they grow.

// members is the set of sockets in a room: the first held inline, a map from the
// second on, and inline again once the room is down to one. It is stored by value in
// Server.rooms, so a room of one costs no allocation beyond the index's slot.
type members struct {
	one  *Socket              // the only member, when many is nil
	many map[*Socket]struct{} // two members or more
}

func (m members) len() int {
	if m.many != nil {
		return len(m.many)
	}
	if m.one != nil {
		return 1
	}
	return 0
}

func (m members) has(so *Socket) bool {
	if m.many != nil {
		_, ok := m.many[so]
		return ok
	}
	return so != nil && m.one == so
}

func (m *members) add(so *Socket) {
	switch {
	case m.many != nil:
		m.many[so] = struct{}{}
	case m.one == nil:
		m.one = so
	case m.one != so:
		m.many = map[*Socket]struct{}{m.one: {}, so: {}}
		m.one = nil
	}
}

func (m *members) remove(so *Socket) {
	if m.many == nil {
		if m.one == so {
			m.one = nil
		}
		return
	}
	delete(m.many, so)
	if len(m.many) == 1 {
		// A room that was large keeps no map of its former members' size.
		for last := range m.many {
			m.one = last
		}
		m.many = nil
	}
}

// all yields every member; the set must not change during the loop.
func (m members) all() iter.Seq[*Socket] {
	return func(yield func(*Socket) bool) {
		if m.many == nil {
			if m.one != nil {
				yield(m.one)
			}
			return
		}
		for so := range m.many {
			if !yield(so) {
				return
			}
		}
	}
}

// roomSetListMax is how many rooms a socket's roomSet holds in a list before it turns
// to a map: beyond it, the linear scans of join and leave would cost more than hashing.
const roomSetListMax = 8

// roomSet is the set of rooms a socket joined (its own id room aside): a list while it
// is short, a map once it is longer than roomSetListMax. The list keeps join order.
type roomSet struct {
	list []string
	set  map[string]struct{} // when non-nil, it holds every room and list is nil
}

func (rs *roomSet) len() int {
	if rs.set != nil {
		return len(rs.set)
	}
	return len(rs.list)
}

func (rs *roomSet) has(room string) bool {
	if rs.set != nil {
		_, ok := rs.set[room]
		return ok
	}
	for _, r := range rs.list {
		if r == room {
			return true
		}
	}
	return false
}

// add adds room; false when it was there already.
func (rs *roomSet) add(room string) bool {
	if rs.has(room) {
		return false
	}
	if rs.set != nil {
		rs.set[room] = struct{}{}
		return true
	}
	if len(rs.list) < roomSetListMax {
		rs.list = append(rs.list, room)
		return true
	}
	rs.set = make(map[string]struct{}, 2*roomSetListMax)
	for _, r := range rs.list {
		rs.set[r] = struct{}{}
	}
	rs.set[room] = struct{}{}
	rs.list = nil
	return true
}

// remove removes room; false when it was not there.
func (rs *roomSet) remove(room string) bool {
	if rs.set != nil {
		if _, ok := rs.set[room]; !ok {
			return false
		}
		delete(rs.set, room)
		return true
	}
	for i, r := range rs.list {
		if r == room {
			rs.list = append(rs.list[:i], rs.list[i+1:]...)
			rs.list[:len(rs.list)+1][len(rs.list)] = "" // the string is not kept alive
			if len(rs.list) == 0 {
				rs.list = nil
			}
			return true
		}
	}
	return false
}

// all yields every room; the set must not change during the loop.
func (rs *roomSet) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		if rs.set == nil {
			for _, r := range rs.list {
				if !yield(r) {
					return
				}
			}
			return
		}
		for r := range rs.set {
			if !yield(r) {
				return
			}
		}
	}
}

// appendTo appends every room to dst.
func (rs *roomSet) appendTo(dst []string) []string {
	if rs.set == nil {
		return append(dst, rs.list...)
	}
	for r := range rs.set {
		dst = append(dst, r)
	}
	return dst
}
