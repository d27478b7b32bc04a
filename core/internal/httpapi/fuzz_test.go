package httpapi

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/rtserver/rtserver/core/internal/auth"
)

var testLimits = nameLimits{event: 16, room: 24}

func FuzzDecoders(f *testing.F) {
	for _, s := range []string{
		`{"userId":"alice","event":"e","data":{"a":[1,2,{"b":null}]}}`,
		`{"room":"r","event":"e","data":"x"}`,
		`{"event":"e"}`,
		`{"userId":"a","title":"t","message":"m","type":"info"}`,
		`{"userId":1}`, `[]`, `null`, ``, `{"event":"connect"}`, `{} {}`, "\xff",
		`{"userId":"a\u0000","event":"e"}`, `{"room":"r\n","event":"e"}`, "{\"event\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkData := func(d json.RawMessage) {
			if !json.Valid(d) {
				t.Fatalf("invalid data %q from %q", d, body)
			}
		}
		checkEvent := func(ev string) {
			if ev == "" || reservedEvents[ev] || checkName("event", ev, testLimits.event) != nil {
				t.Fatalf("bad event %q accepted from %q", ev, body)
			}
		}
		if u, ev, d, e := decodePush(body, testLimits); e == nil {
			if auth.CheckUserID(u) != nil {
				t.Fatalf("bad userId %q accepted from %q", u, body)
			}
			checkEvent(ev)
			checkData(d)
		} else if e.Status != 400 || e.Code != CodeInvalidRequest {
			t.Fatalf("push error %+v", e)
		}
		if ev, d, e := decodeBroadcast(body, testLimits); e == nil {
			checkEvent(ev)
			checkData(d)
		} else if e.Status != 400 {
			t.Fatalf("broadcast error %+v", e)
		}
		if room, ev, d, e := decodeRoom(body, testLimits); e == nil {
			if checkName("room", room, testLimits.room) != nil {
				t.Fatalf("bad room %q accepted from %q", room, body)
			}
			checkEvent(ev)
			checkData(d)
		} else if e.Status != 400 {
			t.Fatalf("room error %+v", e)
		}
		if n, e := decodeNotification(body); e == nil {
			if auth.CheckUserID(n.userID) != nil || !notificationTypes[n.typ] {
				t.Fatalf("bad notification %+v from %q", n, body)
			}
		} else if e.Status != 400 {
			t.Fatalf("notification error %+v", e)
		}
	})
}

func FuzzParseSigHeaders(f *testing.F) {
	sig := Sign("k", SignatureV1, "GET", "/", "1", "n", nil)
	f.Add("1625097600000", "abc123", "v1", sig)
	f.Add("1625097600000", "abc123", "v2", sig)
	f.Add("", "", "", sig)
	f.Add("99999999999999999999", "n", "v3", "zz")
	f.Add("1", "\x00", "V1", sig+"00")
	f.Fuzz(func(t *testing.T, ts, nonce, version, sig string) {
		if sig == "" {
			return // the caller never passes an empty signature
		}
		h, e := parseSigHeaders(ts, nonce, version, sig)
		if e != nil {
			if e.Status != 401 {
				t.Fatalf("status %d", e.Status)
			}
			switch e.Code {
			case CodeSignatureMissing, CodeSignatureInvalid, CodeSignatureVersionUnsupported, CodeTimestampInvalid:
			default:
				t.Fatalf("code %s", e.Code)
			}
			return
		}
		if len(h.mac) != 32 || h.nonce != nonce || len(nonce) > maxNonceLen || !printableASCII(nonce) {
			t.Fatalf("accepted %+v", h)
		}
		if h.version != SignatureV1 && h.version != SignatureV2 {
			t.Fatalf("version %q", h.version)
		}
		if n, err := strconv.ParseInt(ts, 10, 64); err != nil || n != h.timestamp || n < 0 {
			t.Fatalf("timestamp %q -> %d", ts, h.timestamp)
		}
	})
}
