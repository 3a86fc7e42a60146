package middleware

import (
	"bytes"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"
)

// clientIP finds the address a request came from, for keying the rate
// limits, from the settings of the host's app: ProxyHeader,
// EnableTrustedProxyCheck and TrustedProxies.
//
// It is not c.IP(): with a ProxyHeader, c.IP() returns the header's whole
// value, or with EnableIPValidation its first address, and both are the
// client's to choose, since a proxy appends the address it saw to what
// the client sent. The one address no client can forge is the right-most
// that no trusted proxy wrote, so that is the one taken: the header is
// walked from its end, past the app's trusted proxies. The module is
// mounted on the host's app, so it reads these settings from the app
// rather than from a Config of its own.
type clientIP struct {
	// trust is the parsed TrustedProxies of the last app seen (an app's
	// config does not change once it is made).
	trust atomic.Pointer[proxyTrust]
}

type proxyTrust struct {
	app      *fiber.App
	prefixes []netip.Prefix
}

// key returns the client's address.
func (k *clientIP) key(c *fiber.Ctx) string {
	remote, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	remote = remote.Unmap()
	cfg := c.App().Config()
	if cfg.ProxyHeader == "" {
		return remote.String()
	}
	trust := k.trusted(c.App(), cfg.TrustedProxies)
	if cfg.EnableTrustedProxyCheck && !trust.has(remote) {
		return remote.String() // a client's own header: ignored
	}
	// Without the trusted-proxy check the header is believed from anyone,
	// as Fiber does, but only its last address: the one the nearest proxy
	// wrote, when there is one.
	hop := remote
	lines := c.Request().Header.PeekAll(cfg.ProxyHeader)
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for len(rest) > 0 {
			var entry []byte
			if j := bytes.LastIndexByte(rest, ','); j >= 0 {
				rest, entry = rest[:j], rest[j+1:]
			} else {
				rest, entry = nil, rest
			}
			addr, ok := parseHop(entry)
			if !ok {
				// What a trusted proxy passed on is not an address: the
				// last hop known is as far as the chain can be believed.
				return hop.String()
			}
			hop = addr
			if !cfg.EnableTrustedProxyCheck || !trust.has(addr) {
				return addr.String()
			}
		}
	}
	return hop.String() // every hop a trusted proxy: the request is theirs
}

// trusted returns app's trusted proxies, parsed once per app.
func (k *clientIP) trusted(app *fiber.App, proxies []string) *proxyTrust {
	if t := k.trust.Load(); t != nil && t.app == app {
		return t
	}
	t := &proxyTrust{app: app}
	for _, p := range proxies {
		if pre, err := netip.ParsePrefix(p); err == nil {
			t.prefixes = append(t.prefixes, pre.Masked())
		} else if a, err := netip.ParseAddr(p); err == nil {
			t.prefixes = append(t.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
		// Fiber warns of what it cannot parse; it trusts nothing for it.
	}
	k.trust.Store(t)
	return t
}

func (t *proxyTrust) has(a netip.Addr) bool {
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one entry of a forwarding header: an address, with or
// without a port.
func parseHop(entry []byte) (netip.Addr, bool) {
	s := strings.TrimSpace(string(entry))
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
