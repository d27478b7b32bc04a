package clientip

import (
	"net/netip"
	"testing"
)

func TestResolve(t *testing.T) {
	p, err := Parse([]string{"10.0.0.0/8", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	cases := []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.1", []string{"1.2.3.4"}, "192.0.2.1"},              // untrusted peer: header ignored
		{"127.0.0.1", nil, "127.0.0.1"},                              // trusted, no header
		{"127.0.0.1", []string{"1.2.3.4"}, "1.2.3.4"},                // one hop
		{"127.0.0.1", []string{"9.9.9.9, 1.2.3.4"}, "1.2.3.4"},       // rightmost untrusted wins
		{"127.0.0.1", []string{"1.2.3.4, 10.1.1.1"}, "1.2.3.4"},      // trusted hops skipped
		{"127.0.0.1", []string{"1.2.3.4", "10.1.1.1"}, "1.2.3.4"},    // several header lines
		{"127.0.0.1", []string{"10.2.2.2, 10.1.1.1"}, "10.2.2.2"},    // all trusted: leftmost
		{"127.0.0.1", []string{"garbage, 10.1.1.1"}, "10.1.1.1"},     // stop at a malformed hop
		{"::ffff:127.0.0.1", []string{"2001:db8::1"}, "2001:db8::1"}, // mapped peer
		{"::1", []string{" 1.2.3.4 "}, "1.2.3.4"},                    // spaces
		{"127.0.0.1", []string{"::ffff:1.2.3.4"}, "1.2.3.4"},         // mapped client
	}
	for _, tc := range cases {
		if got := p.Resolve(ip(tc.peer), tc.xff); got != ip(tc.want) {
			t.Errorf("Resolve(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
	none, _ := Parse(nil)
	if got := none.Resolve(ip("127.0.0.1"), []string{"1.2.3.4"}); got != ip("127.0.0.1") {
		t.Errorf("no proxies: %s", got)
	}
}

func TestParse(t *testing.T) {
	p, err := Parse([]string{"10.0.0.0/8", " 192.0.2.7 ", "::ffff:10.0.0.0/104", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.1.2.3", "192.0.2.7", "::ffff:10.9.9.9", "2001:db8::5"} {
		if !p.Trusted(netip.MustParseAddr(a)) {
			t.Errorf("%s not trusted", a)
		}
	}
	for _, a := range []string{"11.0.0.1", "192.0.2.8", "2001:db9::1"} {
		if p.Trusted(netip.MustParseAddr(a)) {
			t.Errorf("%s trusted", a)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "1.2.3"} {
		if _, err := Parse([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
