package chattest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a Redis Cluster of three masters, each with replicas
// replicas, every node a redis-server child process of the test in
// cluster mode, made with `redis-cli --cluster create`, as a site that
// outgrows one Redis runs it.
type RedisCluster struct {
	Nodes []*RedisServer
}

// StartRedisCluster starts a Redis Cluster of three masters with
// replicas replicas each for the test and stops it when the test ends; it
// skips the test when redis-server or redis-cli is not installed (.ci/run
// installs both). A master killed while it has a replica is replaced by
// it after the nodes' timeout (2 s).
func StartRedisCluster(t testing.TB, replicas int) *RedisCluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed: skipping (apt-get install redis-server; .ci/run does)", bin)
		}
	}
	dir := t.TempDir()
	c := &RedisCluster{}
	addrs := make([]string, 3*(1+replicas))
	for i := range addrs {
		// A directory each: a replica's first sync writes an RDB file
		// there, which two nodes must not share.
		own := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(own, 0o700); err != nil {
			t.Fatal(err)
		}
		n := &RedisServer{args: []string{"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(own, "nodes.conf"),
			"--cluster-node-timeout", "2000", "--dir", own,
			// A replica's first sync at once, not after the 5 s Redis 7
			// waits for more replicas: until it is done, the replica would
			// not take over from a master killed.
			"--repl-diskless-sync-delay", "0"}}
		// A cluster node listens on its port + 10000 too (the bus).
		n.startOnFreePort(t, 10000)
		c.Nodes = append(c.Nodes, n)
		addrs[i] = n.Addr
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v: %s", err, out)
	}
	c.AwaitOK(t, nil)
	c.awaitReplicas(t)
	return c
}

// awaitReplicas waits until every replica has synced with its master.
func (c *RedisCluster) awaitReplicas(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr})
		for {
			info, err := cl.Info(context.Background(), "replication").Result()
			if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				_ = cl.Close()
				t.Fatalf("replica %s not in sync: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = cl.Close()
	}
}

// Client returns a new cluster client, closed when the test ends: give
// each instance its own.
func (c *RedisCluster) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Masters returns the nodes that are masters now.
func (c *RedisCluster) Masters(t testing.TB) []*RedisServer {
	t.Helper()
	var out []*RedisServer
	for _, n := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: time.Second})
		info, err := cl.Info(context.Background(), "replication").Result()
		_ = cl.Close()
		if err == nil && strings.Contains(info, "role:master") {
			out = append(out, n)
		}
	}
	return out
}

// AwaitOK waits until every node still running says the cluster is ok.
func (c *RedisCluster) AwaitOK(t testing.TB, skip *RedisServer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		if n == skip {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr})
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				_ = cl.Close()
				t.Fatalf("cluster not ok on %s: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = cl.Close()
	}
}
