package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"time"

	"github.com/redis/go-redis/v9"
)

// errNoRedis says that redis-server is not installed: the workloads of
// several instances are skipped, with a note in the table.
var errNoRedis = errors.New("redis-server is not installed")

// redisServer is a redis-server child process on a free loopback port,
// without persistence, for the workloads of several instances.
type redisServer struct {
	cmd *exec.Cmd
	// url is the redis://… URL the instances are given, as a host gives
	// the sample app's --redis.
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
	r := &redisServer{cmd: cmd, url: "redis://" + addr}
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
func (r *redisServer) client() (*redis.Client, error) {
	opt, err := redis.ParseURL(r.url)
	if err != nil {
		return nil, err
	}
	opt.ContextTimeoutEnabled = true // bound each call by its context, as a host should
	return redis.NewClient(opt), nil
}

// stop kills the server and waits for it; it keeps nothing worth a clean
// shutdown.
func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}
