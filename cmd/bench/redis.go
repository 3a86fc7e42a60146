package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/internal/redisurl"
	"github.com/redis/go-redis/v9"
)

// errNoRedis says that redis-server is not installed: the workloads of
// several instances are skipped, with a note in the table.
var errNoRedis = errors.New("redis-server is not installed")

// redisServer is a redis-server child process on a free loopback port,
// without persistence, for the workloads of several instances; or three,
// a Redis Cluster of three masters (startRedisCluster).
type redisServer struct {
	cmds []*exec.Cmd
	// url is the redis://… URL the instances are given, as a host gives
	// the sample app's --redis: a cluster's names every node.
	url string
}

// startRedis starts redis-server and waits until it answers; it returns
// errNoRedis when the program is not on PATH.
func startRedis(ctx context.Context) (*redisServer, error) {
	exe, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	// The port is free when looked at; redis-server takes it a moment
	// later, and nothing else on a benchmark host races for it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(exe, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisServer{cmds: []*exec.Cmd{cmd}, url: "redis://" + addr}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ping(pingCtx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client returns a new client of the server, as a process of its own
// would make from the URL.
func (r *redisServer) client() (redis.UniversalClient, error) { return redisurl.Open(r.url) }

// stop kills the servers and waits for them; they keep nothing worth a
// clean shutdown.
func (r *redisServer) stop() {
	for _, cmd := range r.cmds {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// startRedisCluster starts three redis-server processes in cluster mode,
// each in its own directory under dir, joins them as a cluster of three
// masters with redis-cli, and waits until every node says it is ok. It
// returns errNoRedis when redis-server or redis-cli is not on PATH.
func startRedisCluster(ctx context.Context, dir string) (*redisServer, error) {
	exe, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errNoRedis
	}
	r := &redisServer{}
	var addrs []string
	for i := 0; len(addrs) < 3 && i < 40; i++ {
		addr, port, err := clusterPort()
		if err != nil {
			r.stop()
			return nil, err
		}
		if port == "" {
			continue
		}
		own := filepath.Join(dir, fmt.Sprint("redis-cluster-", i))
		if err := os.MkdirAll(own, 0o700); err != nil {
			r.stop()
			return nil, err
		}
		cmd := exec.Command(exe, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(own, "nodes.conf"), "--dir", own)
		if err := cmd.Start(); err != nil {
			r.stop()
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		r.cmds = append(r.cmds, cmd)
		addrs = append(addrs, addr)
	}
	if len(addrs) < 3 {
		r.stop()
		return nil, errors.New("no three free ports below 55536 for a Redis Cluster")
	}
	r.url = "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	if err := awaitNodes(ctx, addrs, func(*redis.Client) error { return nil }); err != nil {
		r.stop()
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...).CombinedOutput(); err != nil {
		r.stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	err = awaitNodes(ctx, addrs, func(c *redis.Client) error {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = errors.New("cluster_state is not ok")
		}
		return err
	})
	if err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// clusterPort picks a free loopback port for a cluster node; port is
// empty when the one picked is above 55535, which leaves no room for the
// node's bus port (port + 10000).
func clusterPort() (addr, port string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	_, port, _ = net.SplitHostPort(addr)
	if n, _ := strconv.Atoi(port); n > 55535 {
		return "", "", nil
	}
	return addr, port, nil
}

// awaitNodes waits up to 30 s until each node answers a ping and ready
// says it is ready.
func awaitNodes(ctx context.Context, addrs []string, ready func(*redis.Client) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		for {
			callCtx, cancel := context.WithTimeout(ctx, time.Second)
			err := c.Ping(callCtx).Err()
			cancel()
			if err == nil {
				err = ready(c)
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				_ = c.Close()
				return fmt.Errorf("redis cluster node %s: %w", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = c.Close()
	}
	return nil
}
