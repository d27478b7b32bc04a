package engineio

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1e4b", "bAQID", "b", "b!!", "2probe", "\x1e", "4\x1e", "", "7", "1\x1e6\x1ebAA=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []packet
		err := decodePayload(body, func(p packet) error {
			got = append(got, p)
			return nil
		})
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same payload.
		msgs := make([]*Message, len(got))
		for i, p := range got {
			if p.binary {
				msgs[i] = NewMessage(p.data, true)
			} else {
				msgs[i] = newPacket(p.typ, p.data)
			}
		}
		out := encodePayload(msgs)
		var again []packet
		if err := decodePayload(out, func(p packet) error { again = append(again, p); return nil }); err != nil {
			t.Fatalf("re-encoded payload %q does not decode: %v", out, err)
		}
		if len(again) != len(got) {
			t.Fatalf("%d packets, %d after re-encoding", len(got), len(again))
		}
		for i := range got {
			if got[i].typ != again[i].typ || got[i].binary != again[i].binary || !bytes.Equal(got[i].data, again[i].data) {
				t.Fatalf("packet %d: %+v then %+v", i, got[i], again[i])
			}
		}
	})
}

func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"4hello", "2probe", "3", "", "x", "6"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeText(b)
		if err != nil {
			return
		}
		if p.typ < '0' || p.typ > '6' || !bytes.Equal(p.data, b[1:]) {
			t.Fatalf("decodeText(%q) = %+v", b, p)
		}
	})
}

func TestMessageEncodings(t *testing.T) {
	for _, n := range []int{0, 1, 124, 125, 126, 65534, 65535, 65536, 70000} {
		data := bytes.Repeat([]byte{'x'}, n)
		for _, bin := range []bool{false, true} {
			m := NewMessage(data, bin)
			f := m.wsFrame()
			payload := m.wsPayload()
			want := append([]byte{'4'}, data...)
			if bin {
				want = data
			}
			if !bytes.Equal(payload, want) {
				t.Fatalf("n=%d bin=%v payload mismatch", n, bin)
			}
			if f[0] != 0x81 && !bin || f[0] != 0x82 && bin {
				t.Fatalf("n=%d bin=%v first byte %x", n, bin, f[0])
			}
			if len(f)-len(payload) > 10 {
				t.Fatalf("header too long")
			}
			p := m.pollEncoding()
			if bin {
				if string(p) != "b"+base64.StdEncoding.EncodeToString(data) {
					t.Fatalf("poll encoding")
				}
			} else if !bytes.Equal(p, want) {
				t.Fatalf("poll encoding")
			}
			// Cached: the same backing array every time.
			if &m.wsFrame()[0] != &f[0] {
				t.Fatal("frame not cached")
			}
		}
		// Framed in place: the same bytes as NewMessage builds, in buf itself.
		for _, room := range []int{FrameHeadroom, FrameHeadroom + 7, 3} {
			buf := append(bytes.Repeat([]byte{0xEE}, room), data...)
			m := NewFramedMessage(buf, room)
			ref := NewMessage(data, false)
			if !bytes.Equal(m.wsFrame(), ref.wsFrame()) || !bytes.Equal(m.pollEncoding(), ref.pollEncoding()) ||
				!bytes.Equal(m.wsPayload(), ref.wsPayload()) || !bytes.Equal(m.Data(), data) {
				t.Fatalf("n=%d room=%d: framed message differs from NewMessage's", n, room)
			}
			if f := m.wsFrame(); room >= FrameHeadroom && &f[len(f)-1] != &buf[len(buf)-1] {
				t.Fatalf("n=%d room=%d: frame not built in place", n, room)
			}
		}
	}
}
