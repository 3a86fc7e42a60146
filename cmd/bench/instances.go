package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// wakeTwo runs the wake workload across two instances: --wake2 long polls
// held on one server process, each message sent through a second one on
// the same database, the wake-up carried by rs, one Redis or a Redis
// Cluster (API.md §11). kind names the database for the table ("mysql" or
// "sqlite"). On SQLite both processes share one file, each with the
// module's single connection: enough for Sends one at a time and the
// polls' reads.
func (rep *report) wakeTwo(ctx context.Context, kind, dsn, dir string, rs *redisServer, stderr io.Writer, log *slog.Logger, logf func(string, ...any)) (wakeResult, error) {
	n := rep.opts.wake2
	// Users 0..n-1 hold the polls; user n sends to each of them.
	contacts := make([][2]int, n)
	for i := range contacts {
		contacts[i] = [2]int{n, i}
	}
	logf("wake2 (%s): preparing %d users", kind, n+1)
	fx, err := prepare(ctx, dsn, n+1, contacts, log)
	if err != nil {
		return wakeResult{}, fmt.Errorf("wake2: prepare: %w", err)
	}
	holder, err := startChild(ctx, dsn, dir, "", rs.url, stderr)
	if err != nil {
		return wakeResult{}, fmt.Errorf("wake2: %w", err)
	}
	defer holder.stop()
	sender, err := startChild(ctx, dsn, dir, "", rs.url, stderr)
	if err != nil {
		return wakeResult{}, fmt.Errorf("wake2: %w", err)
	}
	defer sender.stop()
	logf("wake2 (%s): %d long polls held on one instance, a message to each through the other", kind, n)
	w, err := wake(ctx, holder, sender.addr, fx, newPollKind(fx), fx.users[:n], fx.users[n])
	if err != nil {
		return wakeResult{}, fmt.Errorf("wake2: %w", err)
	}
	return w, nil
}

// sendTwo runs the send workload of throughput through two instances of
// the module in this process, on the database sendDSN names (already
// prepared as fx) and joined by rs, one Redis or a Redis Cluster, the
// clients split evenly between them, against the same insert workload,
// again in alternating rounds; name tells the profiles apart.
// Messages are numbered from worker tag, distinct from other workloads'.
func (rep *report) sendTwo(ctx context.Context, kind, name, sendDSN string, tag int, rs *redisServer, fx *fixture, ins *insertLoad, dir string, log *slog.Logger, logf func(string, ...any)) (send, insert rate, err error) {
	o := rep.opts
	clients := o.clients
	var addrs []string
	for range 2 {
		rdb, err := rs.client()
		if err != nil {
			return send, insert, err
		}
		defer rdb.Close()
		srv, err := startChat(ctx, sendDSN, "127.0.0.1:0", dir, rdb, log)
		if err != nil {
			return send, insert, fmt.Errorf("%s: start instance: %w", kind, err)
		}
		defer srv.close()
		if err := awaitRedis(ctx, srv.chat); err != nil {
			return send, insert, err
		}
		addrs = append(addrs, srv.addr)
	}
	load, err := newSDKLoad(addrs, fx.secret, fx.users[:clients], sendOp(fx, clients, tag))
	if err != nil {
		return send, insert, err
	}
	defer load.close()
	logf("%s (%s): /Message/Send split over two instances joined by %s against raw INSERTs, %d clients, %d rounds", name, kind, rs.url, clients, o.rounds)
	p := phase{warmup: o.warmup, duration: o.duration}
	file := strings.ReplaceAll(name, " ", "-")
	return compare(ctx, o.rounds, p, load, ins, rep.profile(file+"-"+kind), rep.profile("insert-"+file+"-"+kind))
}
