package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
)

func TestServeRedis(t *testing.T) {
	t.Parallel()
	rs := chattest.StartRedis(t)
	serveRedisUp(t, "redis://"+rs.Addr+"/0")
}

// TestServeRedisCluster: --redis naming several nodes is a Redis
// Cluster's.
func TestServeRedisCluster(t *testing.T) {
	t.Parallel()
	rc := chattest.StartRedisCluster(t, 0)
	serveRedisUp(t, "redis://"+rc.Nodes[0].Addr+"?addr="+rc.Nodes[1].Addr+"&addr="+rc.Nodes[2].Addr)
}

// serveRedisUp runs serve with FIBERCHAT_REDIS set to redisURL until its
// /healthz says Redis is up.
func serveRedisUp(t *testing.T, redisURL string) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &chattest.SyncBuffer{}, &chattest.SyncBuffer{}
	done := make(chan int, 1)
	env := map[string]string{"FIBERCHAT_REDIS": redisURL}
	args := []string{"serve", "--dsn", tempDSN(t), "--addr", "127.0.0.1:0", "--upload-dir", filepath.Join(t.TempDir(), "uploads")}
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), stdout, stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	}()

	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(stdout.String()); m != nil {
			resp, err := http.Get(m[1] + "/healthz")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), `"redis":"up"`) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no healthz with redis up from serve --redis; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeBadRedisURL(t *testing.T) {
	t.Parallel()
	r := runSample(t, nil, "serve", "--dsn", tempDSN(t), "--addr", "127.0.0.1:0", "--redis", "http://not-redis")
	wantOneLineError(t, r)
	if !strings.Contains(r.stderr, "--redis") {
		t.Fatalf("stderr %q does not name --redis", r.stderr)
	}
}
