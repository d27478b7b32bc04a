package socketio

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
)

// A room goes from one inline member to a map and back, and its listing stays the set
// of members through every step.
func TestMembersSet(t *testing.T) {
	socks := make([]*Socket, 5)
	for i := range socks {
		socks[i] = &Socket{id: fmt.Sprint(i)}
	}
	var m members
	check := func(want ...*Socket) {
		t.Helper()
		if m.len() != len(want) {
			t.Fatalf("len %d, want %d", m.len(), len(want))
		}
		got := slices.Collect(m.all())
		if len(got) != len(want) {
			t.Fatalf("all yields %d, want %d", len(got), len(want))
		}
		for _, so := range want {
			if !m.has(so) || !slices.Contains(got, so) {
				t.Fatalf("member %s missing", so.id)
			}
		}
		if (len(want) > 1) != (m.many != nil) {
			t.Fatalf("%d members, map %v", len(want), m.many != nil)
		}
	}
	check()
	if m.has(nil) {
		t.Fatal("an empty room has nil")
	}
	m.add(socks[0])
	m.add(socks[0])
	check(socks[0])
	m.add(socks[1])
	m.add(socks[2])
	check(socks[0], socks[1], socks[2])
	m.remove(socks[3]) // not a member
	m.remove(socks[0])
	check(socks[1], socks[2])
	m.remove(socks[1])
	check(socks[2])
	m.remove(socks[4])
	check(socks[2])
	m.remove(socks[2])
	check()
}

// A socket's rooms are a list up to roomSetListMax, then a map; both answer alike.
func TestRoomSet(t *testing.T) {
	var rs roomSet
	var want []string
	for i := range 2 * roomSetListMax {
		r := fmt.Sprint("r", i)
		if !rs.add(r) || rs.add(r) {
			t.Fatalf("add %s", r)
		}
		want = append(want, r)
		if (rs.set != nil) != (len(want) > roomSetListMax) {
			t.Fatalf("%d rooms, map %v", len(want), rs.set != nil)
		}
	}
	for _, drop := range []string{"r3", "r0", "r15"} {
		if !rs.remove(drop) || rs.remove(drop) {
			t.Fatalf("remove %s", drop)
		}
		want = slices.DeleteFunc(want, func(r string) bool { return r == drop })
	}
	got := rs.appendTo(nil)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || rs.len() != len(want) {
		t.Fatalf("rooms %v, want %v", got, want)
	}
	for _, r := range want {
		if !rs.has(r) {
			t.Fatalf("has %s", r)
		}
	}

	var short roomSet
	short.add("a")
	short.add("b")
	short.add("c")
	short.remove("b")
	if got := short.appendTo(nil); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("list %v keeps join order, want [a c]", got)
	}
	if tail := short.list[:cap(short.list)]; tail[len(short.list)] != "" {
		t.Fatal("a removed room stays referenced")
	}
	short.remove("a")
	short.remove("c")
	if short.list != nil || short.len() != 0 {
		t.Fatal("an empty list is kept")
	}
}

// Two sockets share a room, one leaves and the room is back to one inline member; a
// broadcast to it, the member listing and the size follow.
func TestRoomOfOneAndTwo(t *testing.T) {
	srv := NewServer(Options{Logger: testLogger()})
	t.Cleanup(func() { _ = srv.Close(t.Context()) })
	var conns [2]countingConn
	var socks [2]*Socket
	for i := range socks {
		conns[i].sent = new(atomic.Int64)
		socks[i] = newSocket(srv, &conns[i])
		socks[i].connect(nil)
		socks[i].Join("shared")
	}
	if n := srv.RoomSize("shared"); n != 2 {
		t.Fatalf("size %d", n)
	}
	if n, _ := srv.EmitTo([]string{"shared"}, nil, "e"); n != 2 {
		t.Fatalf("reached %d", n)
	}
	socks[0].Leave("shared")
	srv.mu.RLock()
	m := srv.rooms["shared"]
	srv.mu.RUnlock()
	if m.many != nil || m.one != socks[1] {
		t.Fatalf("room of one kept as %+v", m)
	}
	if got := srv.RoomMembers("shared"); !slices.Equal(got, []string{socks[1].id}) {
		t.Fatalf("members %v", got)
	}
	if n, _ := srv.EmitTo([]string{"shared"}, []string{socks[1].id}, "e"); n != 0 {
		t.Fatalf("except: reached %d", n)
	}
	if n, _ := srv.EmitTo([]string{"shared", socks[0].id}, nil, "e"); n != 2 {
		t.Fatalf("union: reached %d", n)
	}
	socks[1].Leave("shared")
	if srv.RoomCount() != 0 {
		t.Fatalf("rooms %d", srv.RoomCount())
	}
}
