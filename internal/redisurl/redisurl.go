// Package redisurl makes a go-redis client from the redis://… URL a host
// gives its instances (the sample app's --redis, the benchmark's
// instances): one place that decides which URL names a Redis Cluster and
// how its client bounds a call.
package redisurl

import (
	"net/url"

	"github.com/redis/go-redis/v9"
)

// Open returns a client for rawURL. A URL naming more than one node
// (addr parameters, go-redis's ParseClusterURL form) is a Redis
// Cluster's; any other is one server's. Either client bounds each call
// by its context's deadline.
func Open(rawURL string) (redis.UniversalClient, error) {
	if u, err := url.Parse(rawURL); err == nil && u.Query().Has("addr") {
		opt, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, err
		}
		opt.ContextTimeoutEnabled = true
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	// go-redis ignores a call's context deadline unless told to: without
	// this a hung (not closed) Redis holds each call for ReadTimeout.
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}
