package main

import (
	"flag"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// redisFlag adds --redis (FIBERCHAT_REDIS) to a command that may run as
// one of several processes on one database (API.md §11).
func redisFlag(fs *flag.FlagSet) *string {
	return fs.String("redis", "", "redis://… URL of the Redis that several instances share (optional)")
}

// openRedis returns a client for url, or nil without one; close releases
// it (and is a no-op without one).
func openRedis(url string) (client redis.UniversalClient, close func(), err error) {
	if url == "" {
		return nil, func() {}, nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("--redis: %w", err)
	}
	// go-redis ignores a call's context deadline unless told to: without
	// this a hung (not closed) Redis holds each call for ReadTimeout.
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	return c, func() { _ = c.Close() }, nil
}
