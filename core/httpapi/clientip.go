package httpapi

import (
	"fmt"
	"net/netip"
	"strings"
)

// proxySet holds the peers whose X-Forwarded-For is believed.
type proxySet struct{ prefixes []netip.Prefix }

func newProxySet(list []string) (*proxySet, error) {
	p := &proxySet{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			pf, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			p.prefixes = append(p.prefixes, pf.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		a = a.Unmap()
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

func (p *proxySet) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pf := range p.prefixes {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the address to rate-limit by. X-Forwarded-For is read only when the
// peer is a trusted proxy, and then from the right: each trusted hop is skipped and the
// first untrusted address is the client, so a client cannot choose its own address by
// prepending entries. xff holds every X-Forwarded-For header line in order.
func (p *proxySet) clientIP(peer netip.Addr, xff []string) netip.Addr {
	peer = peer.Unmap()
	if len(p.prefixes) == 0 || !p.trusted(peer) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				// A malformed hop: everything left of it is unverifiable.
				return client
			}
			client = a.Unmap()
			if !p.trusted(client) {
				return client
			}
		}
	}
	return client
}
