package redisurl

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestOpen: a URL with addr parameters is a cluster's, any other one
// server's, and both clients bound a call by its context; a URL go-redis
// cannot read is an error, not a client.
func TestOpen(t *testing.T) {
	for _, tt := range []struct {
		url     string
		cluster bool
	}{
		{"redis://127.0.0.1:6379/0", false},
		{"redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", true},
	} {
		c, err := Open(tt.url)
		if err != nil {
			t.Fatalf("Open(%q): %v", tt.url, err)
		}
		switch c := c.(type) {
		case *redis.ClusterClient:
			if !tt.cluster || !c.Options().ContextTimeoutEnabled || len(c.Options().Addrs) != 3 {
				t.Errorf("Open(%q) = a cluster client of %v (context timeouts %v)", tt.url, c.Options().Addrs, c.Options().ContextTimeoutEnabled)
			}
		case *redis.Client:
			if tt.cluster || !c.Options().ContextTimeoutEnabled {
				t.Errorf("Open(%q) = a client of %s (context timeouts %v)", tt.url, c.Options().Addr, c.Options().ContextTimeoutEnabled)
			}
		default:
			t.Errorf("Open(%q) = %T", tt.url, c)
		}
		_ = c.Close()
	}
	for _, bad := range []string{"http://not-redis", "redis://a:1?addr=b:2&nosuch=1"} {
		if c, err := Open(bad); err == nil {
			_ = c.Close()
			t.Errorf("Open(%q) = a client, want an error", bad)
		}
	}
}
