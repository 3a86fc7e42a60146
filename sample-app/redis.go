package main

import (
	"flag"
	"fmt"

	"github.com/fiberchat/fiberchat/internal/redisurl"
	"github.com/redis/go-redis/v9"
)

// redisFlag adds --redis (FIBERCHAT_REDIS) to a command that may run as
// one of several processes on one database (API.md §11).
func redisFlag(fs *flag.FlagSet) *string {
	return fs.String("redis", "", "redis://… URL of the Redis that several instances share (optional); a Redis Cluster's nodes as redis://host1:port?addr=host2:port&addr=host3:port")
}

// openRedis returns a client for url (see redisurl.Open), or nil without
// one; close releases it (and is a no-op without one).
func openRedis(rawURL string) (client redis.UniversalClient, close func(), err error) {
	if rawURL == "" {
		return nil, func() {}, nil
	}
	c, err := redisurl.Open(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("--redis: %w", err)
	}
	return c, func() { _ = c.Close() }, nil
}
