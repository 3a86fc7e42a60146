package main

import (
	"flag"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// redisFlag adds --redis (FIBERCHAT_REDIS) to a command that may run as
// one of several processes on one database (API.md §11).
func redisFlag(fs *flag.FlagSet) *string {
	return fs.String("redis", "", "redis://… URL of the Redis that several instances share (optional); a Redis Cluster's nodes as redis://host1:port?addr=host2:port&addr=host3:port")
}

// openRedis returns a client for url, or nil without one; close releases
// it (and is a no-op without one). A URL naming more than one node (addr
// parameters, go-redis's ParseClusterURL form) is a Redis Cluster.
func openRedis(rawURL string) (client redis.UniversalClient, close func(), err error) {
	if rawURL == "" {
		return nil, func() {}, nil
	}
	if u, perr := url.Parse(rawURL); perr == nil && u.Query().Has("addr") {
		opt, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, nil, fmt.Errorf("--redis: %w", err)
		}
		opt.ContextTimeoutEnabled = true
		c := redis.NewClusterClient(opt)
		return c, func() { _ = c.Close() }, nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("--redis: %w", err)
	}
	// go-redis ignores a call's context deadline unless told to: without
	// this a hung (not closed) Redis holds each call for ReadTimeout.
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	return c, func() { _ = c.Close() }, nil
}
