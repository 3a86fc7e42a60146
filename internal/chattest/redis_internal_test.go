package chattest

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRedisStartOnTakenPort: a redis-server that cannot bind its port is
// reported at once as exited, with its own words, so that the starter
// picks another port instead of waiting 10 s and failing the test.
func TestRedisStartOnTakenPort(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := &RedisServer{Addr: ln.Addr().String()}
	t.Cleanup(func() { r.Kill(t) })
	began := time.Now()
	err = r.start()
	if !errors.Is(err, errExitedAtStart) || !strings.Contains(err.Error(), "bind") {
		t.Fatalf("start on a taken port: %v, want %v with the server's bind error", err, errExitedAtStart)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("start on a taken port took %v", took)
	}
	r.Kill(t) // nothing left to kill: must not block

	r = &RedisServer{}
	r.startOnFreePort(t, 10000)
	if r.Addr == "" {
		t.Fatal("no address")
	}
}

// TestRedisStartOnAnotherRedis: a port taken by another redis-server is
// not mistaken for the one started: that one exits, the other answers.
func TestRedisStartOnAnotherRedis(t *testing.T) {
	other := StartRedis(t)
	r := &RedisServer{Addr: other.Addr}
	t.Cleanup(func() { r.Kill(t) })
	if err := r.start(); !errors.Is(err, errExitedAtStart) {
		t.Fatalf("start where another redis-server listens: %v, want %v", err, errExitedAtStart)
	}
}
