// Package clientip finds the address a request comes from behind trusted proxies: the
// address that rate limits and per-IP caps count by, for the HTTP API and for socket
// connections alike.
package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// Proxies are the peers whose X-Forwarded-For is believed.
type Proxies []netip.Prefix

// ParsePrefix reads an IP address (a single-address prefix) or a CIDR.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Parse reads a list of IP addresses and CIDRs.
func Parse(list []string) (Proxies, error) {
	out := make(Proxies, 0, len(list))
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Trusted reports whether a is one of the proxies.
func (p Proxies) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pf := range p {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client's address. X-Forwarded-For is read only when the peer is a
// trusted proxy, and then from the right: each trusted hop is skipped and the first
// untrusted address is the client, so a client cannot choose its own address by
// prepending entries. A malformed hop ends the walk (what lies left of it cannot be
// verified); when every hop is trusted the leftmost one is the client. xff holds every
// X-Forwarded-For header line, in order.
func (p Proxies) Resolve(peer netip.Addr, xff []string) netip.Addr {
	peer = peer.Unmap()
	if len(p) == 0 || !p.Trusted(peer) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !p.Trusted(client) {
				return client
			}
		}
	}
	return client
}
