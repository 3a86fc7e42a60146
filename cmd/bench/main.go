// Command bench is fiberchat's own benchmark, run by maintainers
// (go run ./cmd/bench) to check a change against the targets and figures in
// docs/performance.md. It starts everything it
// needs on loopback, runs fourteen workloads, each against a reference measured
// in the same run on the same machine (a throughput workload and its
// reference alternate in rounds), and prints a table and, as its last
// line, one JSON object:
//
//  1. ceiling: a bare Fiber handler that parses the info request's JSON
//     body and answers a small JSON object: what this machine's HTTP and
//     JSON cost, with nothing of fiberchat's.
//  2. info: /user/info, signed and with a valid session, by --clients
//     clients; reported as a ratio to the ceiling.
//  3. insert: single-row INSERTs of a message-shaped row through
//     database/sql by --clients goroutines, each its own autocommitted
//     statement: the database's own naive write rate.
//  4. send: /Message/Send by --clients clients, each its own sender and
//     recipient (contacts); reported as a ratio to insert, on SQLite and,
//     with --mysql-dsn, on MariaDB/MySQL, and as a ratio to the ceiling,
//     which runs again for it: send, insert and the ceiling in turn.
//  5. history: /Message/History, a 50-message page below a before_id, for
//     random partners on a SQLite database seeded with --messages messages
//     (100 received by each user from 21 senders); reported as a ratio to
//     the bare keyset SELECT of the same page through database/sql.
//  6. unread: /Message/Unread for random users of that database, 21
//     senders with unread each; reported as a ratio to the bare SELECT of
//     their counters.
//  7. hold: --hold idle long polls (wait 30) held at once; reported as the
//     server's RSS growth per held poll.
//  8. wake: --wake held long polls, then a message to each of their users;
//     reported as the time from the Send's answer to the poll's answer,
//     p50 and p99.
//  9. stream: --stream-hold idle streams (/Message/Stream, API.md §10)
//     held at once; reported as the server's RSS growth per stream.
//  10. stream wake: --stream-wake open streams, then a message to each of
//     their users; reported as the time from the Send's answer to the
//     stream's message event, p50 and p99.
//  11. wake2: --wake2 long polls held on one server process, a message to
//     each of their users through a second one on the same database
//     (MariaDB/MySQL with --mysql-dsn, else one SQLite file), the two
//     joined by a redis-server this program starts (API.md §11); reported
//     as in wake. Skipped, with a note, when redis-server is not installed.
//  12. send two instances: with --mysql-dsn and redis-server, send
//     through two instances of the module on the same MariaDB/MySQL
//     database, joined by Redis, the clients split evenly between them;
//     reported as a ratio to insert, next to the single instance's.
//  13. group send: /Message/Send into one group of 100 members by
//     --clients of them, each round followed by a check that every
//     member's Recv returns each of the round's messages from the others;
//     reported as a ratio to 1:1 Sends on the same database and server, on
//     SQLite and, with --mysql-dsn, on MariaDB/MySQL (see groups.go).
//  14. recv groups: /Message/Recv with last_id, a full page of 100, by
//     readers each in 50 groups with a tenth of --messages among them, on
//     SQLite; reported as a ratio to the bare query MessagesFor runs.
//
// Usage:
//
//	go run ./cmd/bench [--mysql-dsn DSN] [--duration 5s] [--rounds 5] [--clients 64]
//	               [--hold 10000] [--wake 1000] [--stream-hold 10000] [--stream-wake 1000] [--wake2 1000]
//	               [--messages 1000000] [--quick] [--send-only] [--profile DIR]
//
// The module runs with its defaults (durability included) on a fresh
// SQLite file in a temporary directory and, when --mysql-dsn (or
// FIBERCHAT_BENCH_MYSQL_DSN) names a MariaDB/MySQL server, on fresh
// databases named fiberchat_bench_* beside the DSN's, dropped at the end.
// The throughput workloads run the server in this process, sharing the
// CPUs with the load generator and the database as a small host would;
// hold, wake, the stream workloads and wake2 run it as a child process (this program's hidden serve
// subcommand), so that its memory is measured alone.
//
// Every request of the throughput workloads, and every Send and warm-up
// of the others, goes through the Go SDK (package client), over
// fasthttp's client for its low cost on the CPUs the server shares; the
// held polls and streams are raw sockets (see polls.go).
//
// Any failed request makes the exit status 1, after the table. Linux only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/database"
)

// mysqlEnv is the environment's default for --mysql-dsn.
const mysqlEnv = "FIBERCHAT_BENCH_MYSQL_DSN"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serveMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line's.
type options struct {
	mysqlDSN string
	warmup   time.Duration
	duration time.Duration
	clients  int
	hold     int
	// rest is how long the hold workloads let the server rest after the
	// last wave before reading its memory.
	rest time.Duration
	wake int
	// streamHold and streamWake are the stream workloads' hold and wake.
	streamHold int
	streamWake int
	// wake2 is how many polls the wake workload across two instances
	// wakes.
	wake2    int
	rounds   int
	timeout  time.Duration
	profile  string
	messages int
	// sendOnly runs only the throughput workloads Send is measured by
	// (ceiling, info, insert and send on each database).
	sendOnly bool
}

// holdSlack is how many descriptors besides the held sockets each
// process keeps for itself (database, listeners, the runtime).
const holdSlack = 256

// proofWakes is how many of the held polls (or streams) the hold workload
// (or the stream one) wakes after measuring, to prove that the server
// held them.
const proofWakes = 16

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", os.Getenv(mysqlEnv), "MariaDB/MySQL go-sql-driver DSN whose user may create databases fiberchat_bench_* (env "+mysqlEnv+"); empty: SQLite only")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "uncounted warm-up before each throughput workload")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each throughput workload")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds each workload and its reference alternate in, sharing --duration")
	fs.IntVar(&o.clients, "clients", 64, "concurrent clients (and insert goroutines)")
	fs.IntVar(&o.hold, "hold", 10000, "long polls held at once by the hold workload")
	fs.DurationVar(&o.rest, "rest", 21*time.Second, "how long the hold and stream workloads let the server rest after opening before reading its memory (fasthttp ends a worker idle 10 s at its next 10 s check)")
	fs.IntVar(&o.wake, "wake", 1000, "long polls woken by the wake workload")
	fs.IntVar(&o.streamHold, "stream-hold", 10000, "streams held at once by the stream workload")
	fs.IntVar(&o.streamWake, "stream-wake", 1000, "streams woken by the stream wake workload")
	fs.IntVar(&o.wake2, "wake2", 1000, "long polls held on one instance and woken through another by the wake2 workload")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "abort the whole run after this long")
	fs.IntVar(&o.messages, "messages", 1_000_000, "messages seeded for the history and unread workloads (100 per user); recv groups seeds a tenth as many group messages")
	fs.StringVar(&o.profile, "profile", "", "directory for CPU profiles (the first measured round of each throughput workload) and the hold and stream servers' heap profiles")
	fs.BoolVar(&o.sendOnly, "send-only", false, "run only ceiling, info, insert and send (on SQLite and, with --mysql-dsn, MariaDB/MySQL): a quick check of send_*_vs_ceiling; the other keys read 0")
	quick := fs.Bool("quick", false, "a short smoke run: 300ms warm-up, 1s per workload in 2 rounds, 500 held polls and streams, 100 of each woken (and by wake2), 50 000 messages seeded (flags given explicitly win)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return o, errors.New("usage")
	}
	if *quick {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		set := func(name string, apply func()) {
			if !given[name] {
				apply()
			}
		}
		set("warmup", func() { o.warmup = 300 * time.Millisecond })
		set("duration", func() { o.duration = time.Second })
		set("rounds", func() { o.rounds = 2 })
		set("hold", func() { o.hold = 500 })
		set("rest", func() { o.rest = 0 })
		set("wake", func() { o.wake = 100 })
		set("stream-hold", func() { o.streamHold = 500 })
		set("stream-wake", func() { o.streamWake = 100 })
		set("wake2", func() { o.wake2 = 100 })
		set("messages", func() { o.messages = 50_000 })
	}
	switch {
	case o.clients < 1, o.hold < 1, o.wake < 1, o.streamHold < 1, o.streamWake < 1, o.wake2 < 1, o.rounds < 1:
		fmt.Fprintln(stderr, "bench: --clients, --hold, --wake, --stream-hold, --stream-wake, --wake2 and --rounds must be at least 1")
		return o, errors.New("usage")
	case o.messages < minMessages:
		fmt.Fprintf(stderr, "bench: --messages must be at least %d\n", minMessages)
		return o, errors.New("usage")
	case o.duration <= 0 || o.warmup < 0 || o.timeout <= 0:
		fmt.Fprintln(stderr, "bench: --duration and --timeout must be positive, --warmup not negative")
		return o, errors.New("usage")
	}
	return o, nil
}

// run is the whole command, its output passed in so a test can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	limit, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	// Each side of a held poll or stream is a socket in its own process
	// (this one and the server child), so each needs hold (or
	// stream-hold) descriptors plus its own; the two workloads run one
	// after the other.
	for _, n := range []*int{&o.hold, &o.streamHold} {
		if need := uint64(*n + holdSlack); limit < need {
			*n = int(limit) - holdSlack
			if *n < 1 {
				fmt.Fprintf(stderr, "bench: open-file limit %d is too low\n", limit)
				return 1
			}
			fmt.Fprintf(stderr, "bench: open-file limit %d: holding %d instead\n", limit, *n)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep, err := benchmark(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	rep.fileLimit = limit
	rep.print(stdout)
	if n := rep.failed(); n > 0 {
		fmt.Fprintf(stderr, "bench: %d requests failed (see the table); the rates count successes only\n", n)
		return 1
	}
	return 0
}

// report is one run's results.
type report struct {
	opts                                    options
	fileLimit                               uint64
	ceiling, info, insertSQLite, sendSQLite rate
	insertMySQL, sendMySQL                  *rate
	// sendCeilingSQLite and sendCeilingMySQL are the ceiling measured in
	// turn with each database's Send (see throughput): the references of
	// send_*_vs_ceiling. ceiling is the one measured with info.
	sendCeilingSQLite       rate
	sendCeilingMySQL        *rate
	sqlitePool, mysqlPool   int
	history, selectHistory  rate
	unread, selectUnread    rate
	seedMessages, seedUsers int
	seedTime                time.Duration
	hold, streamHold        holdResult
	wake, streamWake        wakeResult
	// redis joins the instances of wake2 and send two instances; nil when
	// redis-server is not installed, and then both are skipped.
	redis *redisServer
	// wake2 is nil when skipped; wake2DB is "mysql" or "sqlite".
	wake2   *wakeResult
	wake2DB string
	// sendTwoMySQL and its insertTwoMySQL reference are nil when skipped.
	sendTwoMySQL, insertTwoMySQL *rate
	// cluster is a Redis Cluster of three masters joining the instances
	// of wake2 and send two instances once more (nil when skipped), for
	// wake2Cluster and sendTwoClusterMySQL.
	cluster                                    *redisServer
	wake2Cluster                               *wakeResult
	sendTwoClusterMySQL, insertTwoClusterMySQL *rate
	// groups are the group workloads' (see groups.go).
	groups groupResults
}

// benchmark runs every workload in turn.
func benchmark(ctx context.Context, o options, stderr io.Writer) (_ *report, err error) {
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	log := warnLogger(stderr)
	dir, err := os.MkdirTemp("", "fiberchat-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return nil, err
		}
	}
	rep := &report{opts: o}
	if o.sendOnly {
		return rep, rep.sendOnly(ctx, dir, log, logf)
	}
	rep.redis, err = startRedis(ctx)
	switch {
	case errors.Is(err, errNoRedis):
		logf("redis-server is not installed: skipping the workloads of two instances")
	case err != nil:
		return nil, err
	default:
		defer rep.redis.stop()
	}
	rep.cluster, err = startRedisCluster(ctx, dir)
	switch {
	case errors.Is(err, errNoRedis):
		logf("redis-server or redis-cli is not installed: skipping the workloads on a Redis Cluster")
	case err != nil:
		return nil, err
	default:
		defer rep.cluster.stop()
	}

	pairs := sendPairs(o.clients)

	logf("SQLite: preparing %s", dir)
	sqliteDSN := "sqlite:" + filepath.Join(dir, "chat.db")
	if err := rep.throughput(ctx, "sqlite", sqliteDSN, "sqlite:"+filepath.Join(dir, "insert.db"), pairs, dir, log, logf); err != nil {
		return nil, err
	}
	if err := rep.conversations(ctx, filepath.Join(dir, "history.db"), dir, log, logf); err != nil {
		return nil, err
	}

	var ms *mysqlServer
	if o.mysqlDSN != "" {
		if ms, err = newMySQLServer(ctx, o.mysqlDSN); err != nil {
			return nil, err
		}
		defer func() {
			if cerr := ms.close(); err == nil && cerr != nil {
				err = cerr
			}
		}()
		sendDSN, err := ms.fresh(ctx, "send")
		if err != nil {
			return nil, err
		}
		insertDSN, err := ms.fresh(ctx, "insert")
		if err != nil {
			return nil, err
		}
		logf("MariaDB/MySQL: fresh databases %s", ms.made)
		if err := rep.throughput(ctx, "mysql", sendDSN, insertDSN, pairs, dir, log, logf); err != nil {
			return nil, err
		}
	}

	if err := rep.polls(ctx, filepath.Join(dir, "polls.db"), dir, stderr, log, logf); err != nil {
		return nil, err
	}

	if err := rep.groupWorkloads(ctx, dir, ms, log, logf); err != nil {
		return nil, err
	}

	if rep.redis != nil {
		kind, dsn := "sqlite", "sqlite:"+filepath.Join(dir, "wake2.db")
		if ms != nil {
			kind = "mysql"
			if dsn, err = ms.fresh(ctx, "wake2"); err != nil {
				return nil, err
			}
		}
		w, err := rep.wakeTwo(ctx, kind, dsn, dir, rep.redis, stderr, log, logf)
		if err != nil {
			return nil, err
		}
		rep.wake2, rep.wake2DB = &w, kind
		if rep.cluster != nil {
			if ms != nil {
				if dsn, err = ms.fresh(ctx, "wake2c"); err != nil {
					return nil, err
				}
			} else {
				dsn = "sqlite:" + filepath.Join(dir, "wake2c.db")
			}
			w, err := rep.wakeTwo(ctx, kind, dsn, dir, rep.cluster, stderr, log, logf)
			if err != nil {
				return nil, err
			}
			rep.wake2Cluster = &w
		}
	}
	return rep, nil
}

// sendOnly runs the throughput workloads alone, as --send-only asks.
func (rep *report) sendOnly(ctx context.Context, dir string, log *slog.Logger, logf func(string, ...any)) error {
	pairs := sendPairs(rep.opts.clients)
	if err := rep.throughput(ctx, "sqlite", "sqlite:"+filepath.Join(dir, "chat.db"), "sqlite:"+filepath.Join(dir, "insert.db"), pairs, dir, log, logf); err != nil {
		return err
	}
	if rep.opts.mysqlDSN == "" {
		return nil
	}
	ms, err := newMySQLServer(ctx, rep.opts.mysqlDSN)
	if err != nil {
		return err
	}
	defer ms.close()
	sendDSN, err := ms.fresh(ctx, "send")
	if err != nil {
		return err
	}
	insertDSN, err := ms.fresh(ctx, "insert")
	if err != nil {
		return err
	}
	return rep.throughput(ctx, "mysql", sendDSN, insertDSN, pairs, dir, log, logf)
}

// sendPairs is send's (sender, recipient) users: client i is user i,
// and messages user clients+i.
func sendPairs(clients int) [][2]int {
	pairs := make([][2]int, clients)
	for i := range pairs {
		pairs[i] = [2]int{i, clients + i}
	}
	return pairs
}

// throughput runs, on one kind of database, info against the ceiling (on
// SQLite only: info reads one row, and the ratio the issue asks for is
// one), then send on the module's database against insert on a fresh
// database of its own and against the ceiling, the three in turn.
func (rep *report) throughput(ctx context.Context, kind, dsn, insertDSN string, pairs [][2]int, dir string, log *slog.Logger, logf func(string, ...any)) error {
	o := rep.opts
	clients := o.clients
	p := phase{warmup: o.warmup, duration: o.duration}
	fx, err := prepare(ctx, dsn, 2*clients, pairs, log)
	if err != nil {
		return fmt.Errorf("%s: prepare: %w", kind, err)
	}
	srv, err := startChat(ctx, dsn, "127.0.0.1:0", dir, nil, log)
	if err != nil {
		return fmt.Errorf("%s: start server: %w", kind, err)
	}
	closeSrv := sync.OnceFunc(srv.close)
	defer closeSrv()

	// The ceiling answers any POST with a success envelope, so the SDK's
	// Info calls it as it calls the module: both pay the same client.
	addr, stop, err := startCeiling()
	if err != nil {
		return err
	}
	defer stop()
	info := func(_ int, c *client.Client) func(context.Context, int) error {
		return func(ctx context.Context, _ int) error {
			_, err := c.Info(ctx)
			return err
		}
	}
	users := fx.users[:clients]
	ceiling, err := newSDKLoad([]string{addr}, fx.secret, users, info)
	if err != nil {
		return err
	}
	defer ceiling.close()
	if kind == "sqlite" {
		infoLoad, err := newSDKLoad([]string{srv.addr}, fx.secret, users, info)
		if err != nil {
			return err
		}
		defer infoLoad.close()
		logf("info: /user/info against the ceiling (a bare Fiber JSON handler), %d clients, %d rounds", clients, o.rounds)
		rep.info, rep.ceiling, err = compare(ctx, o.rounds, p, infoLoad, ceiling, rep.profile("info"), rep.profile("ceiling"))
		if err != nil {
			return err
		}
	}

	ins, pool, closeIns, err := rawInserts(ctx, insertDSN, pairs, log)
	if err != nil {
		return fmt.Errorf("%s: insert: %w", kind, err)
	}
	defer closeIns()
	send, err := newSDKLoad([]string{srv.addr}, fx.secret, fx.users[:clients], sendOp(fx, clients, 0))
	if err != nil {
		return err
	}
	defer send.close()
	// The ceiling runs again, in turn with Send and insert, as the
	// reference of send_*_vs_ceiling: measured minutes apart, as the one
	// with info is from the MariaDB Send, the two rates would carry the
	// machine's drift between them, as any other ratio here would.
	logf("send (%s): /Message/Send against raw INSERTs and the ceiling, %d clients, %d rounds", kind, clients, o.rounds)
	rates, err := compareAll(ctx, o.rounds, p, []workload{send, ins, ceiling},
		[]string{rep.profile("send-" + kind), rep.profile("insert-" + kind), rep.profile("ceiling-send-" + kind)})
	if err != nil {
		return err
	}
	sendRate, insRate, ceilRate := rates[0], rates[1], rates[2]
	if kind == "sqlite" {
		rep.insertSQLite, rep.sendSQLite, rep.sendCeilingSQLite, rep.sqlitePool = insRate, sendRate, ceilRate, pool
		return nil
	}
	rep.sendCeilingMySQL = &ceilRate
	rep.insertMySQL, rep.sendMySQL, rep.mysqlPool = &insRate, &sendRate, pool
	if rep.redis == nil {
		return nil
	}
	// The single instance's pool goes first: two more of 64 connections
	// each beside it and insert's would pass MariaDB's default
	// max_connections (151).
	closeSrv()
	// Worker numbers past the single instance's keep every message
	// distinct from those the other workloads sent.
	send2, ins2, err := rep.sendTwo(ctx, kind, "send two instances", dsn, o.clients, rep.redis, fx, ins, dir, log, logf)
	if err != nil {
		return err
	}
	rep.sendTwoMySQL, rep.insertTwoMySQL = &send2, &ins2
	if rep.cluster == nil {
		return nil
	}
	send2c, ins2c, err := rep.sendTwo(ctx, kind, "send two instances cluster", dsn, 2*o.clients, rep.cluster, fx, ins, dir, log, logf)
	if err != nil {
		return err
	}
	rep.sendTwoClusterMySQL, rep.insertTwoClusterMySQL = &send2c, &ins2c
	return nil
}

// sendOp makes worker i's Send: user i messages user clients+i, each
// message's text numbered from worker tag+i, so that workloads sharing a
// database send distinct messages.
func sendOp(fx *fixture, clients, tag int) func(i int, c *client.Client) func(context.Context, int) error {
	return func(i int, c *client.Client) func(context.Context, int) error {
		to := fx.users[clients+i].UID
		var buf []byte
		return func(ctx context.Context, seq int) error {
			buf = messageText(buf[:0], tag+i, seq)
			sent, err := c.Send(ctx, to, string(buf))
			if err == nil && sent.ID == 0 {
				err = errors.New("no message id in the Send answer")
			}
			return err
		}
	}
}

// profile is where a workload's CPU profile goes when --profile asks for
// one.
func (rep *report) profile(workload string) string {
	if rep.opts.profile == "" {
		return ""
	}
	return filepath.Join(rep.opts.profile, workload+".cpu.pprof")
}

// rawInserts prepares a database of its own, migrated and filled like the
// module's (so the same indexes and foreign key), and readies the insert
// workload on it through the pool database.Open makes. It returns the
// workload, the pool's size, and what closes both.
func rawInserts(ctx context.Context, dsn string, pairs [][2]int, log *slog.Logger) (*insertLoad, int, func(), error) {
	fx, err := prepare(ctx, dsn, 2*len(pairs), pairs, log)
	if err != nil {
		return nil, 0, nil, err
	}
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return nil, 0, nil, err
	}
	db, err := gdb.DB()
	if err != nil {
		_ = database.Close(gdb)
		return nil, 0, nil, err
	}
	uids := make([][2]int64, len(pairs))
	for i, pr := range pairs {
		uids[i] = [2]int64{fx.users[pr[0]].UID, fx.users[pr[1]].UID}
	}
	ins, err := newInsertLoad(ctx, db, len(pairs), uids)
	if err != nil {
		_ = database.Close(gdb)
		return nil, 0, nil, err
	}
	return ins, db.Stats().MaxOpenConnections, func() {
		ins.close()
		_ = database.Close(gdb)
	}, nil
}

// polls runs hold and wake for long polls, then for streams, each on a
// fresh server process over one SQLite file. Its users, in this order:
// wake, hold, stream-wake and stream-hold of them are the workloads' own,
// and the last is the sender of every message, a contact of the users of
// both wake workloads and of the first few held ones of each hold workload
// (which it wakes to prove they were held). No user is in two workloads,
// so none finds a message another left.
func (rep *report) polls(ctx context.Context, path, dir string, stderr io.Writer, log *slog.Logger, logf func(string, ...any)) error {
	o := rep.opts
	dsn := "sqlite:" + path
	total := o.wake + o.hold + o.streamWake + o.streamHold + 1
	proof, streamProof := min(proofWakes, o.hold), min(proofWakes, o.streamHold)
	streams := o.wake + o.hold
	var contacts [][2]int
	for i := range o.wake + proof {
		contacts = append(contacts, [2]int{total - 1, i})
	}
	for i := range o.streamWake + streamProof {
		contacts = append(contacts, [2]int{total - 1, streams + i})
	}
	logf("hold/wake/stream: preparing %d users", total)
	fx, err := prepare(ctx, dsn, total, contacts, log)
	if err != nil {
		return fmt.Errorf("hold: prepare: %w", err)
	}
	sender := fx.users[total-1]

	logf("hold: %d idle long polls on a server process", o.hold)
	logf("then wake: %d held long polls, a message to each", o.wake)
	rep.hold, rep.wake, err = rep.holdWake(ctx, "hold", dsn, dir, stderr, fx, newPollKind,
		fx.users[o.wake:o.wake+o.hold], fx.users[:o.wake], sender, proof)
	if err != nil {
		return err
	}
	logf("stream: %d idle streams on a server process", o.streamHold)
	logf("then stream wake: %d open streams, a message to each", o.streamWake)
	held := fx.users[streams+o.streamWake : streams+o.streamWake+o.streamHold]
	rep.streamHold, rep.streamWake, err = rep.holdWake(ctx, "stream", dsn, dir, stderr, fx, newStreamKind,
		held, fx.users[streams:streams+o.streamWake], sender, streamProof)
	return err
}

// holdWake runs the hold workload on held, then the wake workload on
// woken, each on a server process of its own and with a heldKind of its
// own from newKind (a stream kind keeps the readers of what it opened).
func (rep *report) holdWake(ctx context.Context, name, dsn, dir string, stderr io.Writer, fx *fixture, newKind func(*fixture) heldKind, held, woken []user, sender user, proof int) (holdResult, wakeResult, error) {
	heapProfile := ""
	if rep.opts.profile != "" {
		heapProfile = filepath.Join(rep.opts.profile, name+".heap.pprof")
	}
	srv, err := startChild(ctx, dsn, dir, heapProfile, "", stderr)
	if err != nil {
		return holdResult{}, wakeResult{}, err
	}
	h, err := hold(ctx, srv, fx, newKind(fx), held, sender, proof, rep.opts.rest)
	srv.stop()
	if err != nil {
		return h, wakeResult{}, fmt.Errorf("%s: %w", name, err)
	}
	srv, err = startChild(ctx, dsn, dir, "", "", stderr)
	if err != nil {
		return h, wakeResult{}, err
	}
	w, err := wake(ctx, srv, srv.addr, fx, newKind(fx), woken, sender)
	srv.stop()
	if err != nil {
		return h, w, fmt.Errorf("%s wake: %w", name, err)
	}
	return h, w, nil
}

// failed counts the failed requests of every throughput workload.
func (rep *report) failed() int64 {
	n := rep.ceiling.Failed + rep.info.Failed + rep.insertSQLite.Failed + rep.sendSQLite.Failed + rep.sendCeilingSQLite.Failed +
		rep.history.Failed + rep.selectHistory.Failed + rep.unread.Failed + rep.selectUnread.Failed
	if rep.sendMySQL != nil {
		n += rep.insertMySQL.Failed + rep.sendMySQL.Failed + rep.sendCeilingMySQL.Failed
	}
	if rep.sendTwoMySQL != nil {
		n += rep.insertTwoMySQL.Failed + rep.sendTwoMySQL.Failed
	}
	if rep.sendTwoClusterMySQL != nil {
		n += rep.insertTwoClusterMySQL.Failed + rep.sendTwoClusterMySQL.Failed
	}
	n += rep.groups.failed()
	return n
}

// print writes the table and then, as the last line, the JSON summary.
func (rep *report) print(w io.Writer) {
	o := rep.opts
	fmt.Fprintf(w, "fiberchat bench: %s %s/%s, %d CPUs (GOMAXPROCS %d), open-file limit %d\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), rep.fileLimit)
	fmt.Fprintf(w, "throughput: %d clients, keep-alive, closed loop; each workload and its reference alternate in %d rounds, %s measured each in all (first warm-up %s)\n\n",
		o.clients, o.rounds, o.duration, o.warmup)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tdb\tmeasured\treference\tratio\tp50 / p99 ms\tfailed")
	row := func(name, db string, r rate, unit, ref string, ratio string) {
		fmt.Fprintf(tw, "%s\t%s\t%.0f %s\t%s\t%s\t%s / %s\t%d\n", name, db, r.PerSec(), unit, ref, ratio, ms(r.P50), ms(r.P99), r.Failed)
	}
	row("ceiling", "-", rep.ceiling, "req/s", "-", "-")
	row("info", "sqlite", rep.info, "req/s", fmt.Sprintf("ceiling %.0f req/s", rep.ceiling.PerSec()), fmt.Sprintf("%.3f", ratio(rep.info, rep.ceiling)))
	row("insert", "sqlite", rep.insertSQLite, "rows/s", "-", "-")
	row("send", "sqlite", rep.sendSQLite, "req/s", fmt.Sprintf("insert %.0f rows/s", rep.insertSQLite.PerSec()), fmt.Sprintf("%.3f", ratio(rep.sendSQLite, rep.insertSQLite)))
	row("ceiling (send's turns)", "sqlite", rep.sendCeilingSQLite, "req/s", "-", "-")
	row("send", "sqlite", rep.sendSQLite, "req/s", fmt.Sprintf("ceiling %.0f req/s", rep.sendCeilingSQLite.PerSec()), fmt.Sprintf("%.3f", ratio(rep.sendSQLite, rep.sendCeilingSQLite)))
	if rep.sendMySQL != nil {
		row("insert", "mysql", *rep.insertMySQL, "rows/s", "-", "-")
		row("send", "mysql", *rep.sendMySQL, "req/s", fmt.Sprintf("insert %.0f rows/s", rep.insertMySQL.PerSec()), fmt.Sprintf("%.3f", ratio(*rep.sendMySQL, *rep.insertMySQL)))
		row("ceiling (send's turns)", "mysql", *rep.sendCeilingMySQL, "req/s", "-", "-")
		row("send", "mysql", *rep.sendMySQL, "req/s", fmt.Sprintf("ceiling %.0f req/s", rep.sendCeilingMySQL.PerSec()), fmt.Sprintf("%.3f", ratio(*rep.sendMySQL, *rep.sendCeilingMySQL)))
	} else {
		fmt.Fprintln(tw, "send\tmysql\tskipped: no --mysql-dsn\t\t\t\t")
	}
	switch {
	case rep.sendTwoMySQL != nil:
		row("send 2 instances", "mysql", *rep.sendTwoMySQL, "req/s", fmt.Sprintf("insert %.0f rows/s", rep.insertTwoMySQL.PerSec()), fmt.Sprintf("%.3f", ratio(*rep.sendTwoMySQL, *rep.insertTwoMySQL)))
	case rep.sendMySQL == nil:
		fmt.Fprintln(tw, "send 2 instances\tmysql\tskipped: no --mysql-dsn\t\t\t\t")
	default:
		fmt.Fprintln(tw, "send 2 instances\tmysql\tskipped: redis-server not installed\t\t\t\t")
	}
	if rep.sendTwoClusterMySQL != nil {
		row("send 2 inst. cluster", "mysql", *rep.sendTwoClusterMySQL, "req/s", fmt.Sprintf("insert %.0f rows/s", rep.insertTwoClusterMySQL.PerSec()), fmt.Sprintf("%.3f", ratio(*rep.sendTwoClusterMySQL, *rep.insertTwoClusterMySQL)))
	}
	row("select history", "sqlite", rep.selectHistory, "pages/s", "-", "-")
	row("history", "sqlite", rep.history, "req/s", fmt.Sprintf("select %.0f pages/s", rep.selectHistory.PerSec()), fmt.Sprintf("%.3f", ratio(rep.history, rep.selectHistory)))
	row("select unread", "sqlite", rep.selectUnread, "reads/s", "-", "-")
	row("unread", "sqlite", rep.unread, "req/s", fmt.Sprintf("select %.0f reads/s", rep.selectUnread.PerSec()), fmt.Sprintf("%.3f", ratio(rep.unread, rep.selectUnread)))
	rep.groups.printRows(tw, row)
	heldRows := func(name, wakeName, what string, h holdResult, wk wakeResult) {
		fmt.Fprintf(tw, "%s\tsqlite\t%d %ss held\tserver RSS %.1f -> %.1f MiB\t%.2f KiB/%s\t\t\n",
			name, h.Conns, what, float64(h.RSSBefore)/1024, float64(h.RSSAfter)/1024, h.KiBPerConn, what)
		fmt.Fprintf(tw, "%s\tsqlite\t%d %ss woken\tfrom each Send's answer\t-\t%s / %s\t\n", wakeName, wk.Conns, what, ms(wk.P50), ms(wk.P99))
	}
	heldRows("hold", "wake", "poll", rep.hold, rep.wake)
	heldRows("stream", "stream wake", "stream", rep.streamHold, rep.streamWake)
	if w := rep.wake2; w != nil {
		fmt.Fprintf(tw, "wake2\t%s\t%d polls woken\tfrom each Send's answer, on the other instance\t-\t%s / %s\t\n", rep.wake2DB, w.Conns, ms(w.P50), ms(w.P99))
	} else {
		fmt.Fprintln(tw, "wake2\t-\tskipped: redis-server not installed\t\t\t\t")
	}
	if w := rep.wake2Cluster; w != nil {
		fmt.Fprintf(tw, "wake2 cluster\t%s\t%d polls woken\tfrom each Send's answer, on the other instance\t-\t%s / %s\t\n", rep.wake2DB, w.Conns, ms(w.P50), ms(w.P99))
	} else {
		fmt.Fprintln(tw, "wake2 cluster\t-\tskipped: no Redis Cluster (redis-server, redis-cli)\t\t\t\t")
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintf(w, "insert: one prepared INSERT per row through database/sql, autocommit; pool of %d connection(s) on SQLite", rep.sqlitePool)
	if rep.sendMySQL != nil {
		fmt.Fprintf(w, ", %d on MySQL", rep.mysqlPool)
	}
	fmt.Fprintln(w, ", as database.Open makes it (SQLite: WAL, synchronous=FULL)")
	fmt.Fprintf(w, "history, unread: %d messages among %d users (each receives %d from %d senders), seeded in %s; select: the bare query on its own pool as database.Open makes it\n",
		rep.seedMessages, rep.seedUsers, seedPerUser, 1+seedOthers, rep.seedTime.Round(time.Millisecond))
	heldNotes := func(name, wakeName, what string, h holdResult, wk wakeResult) {
		fmt.Fprintf(w, "%s: each %s its own connection to a server process; opened and settled in %s, then a rest of %s; %d woken afterwards to prove they were held\n", name, what, h.Open.Round(time.Millisecond), h.Rest.Round(time.Millisecond), h.Woken)
		fmt.Fprintf(w, "%s: after a forced GC that returned free memory to the OS, RSS %.1f MiB: %.2f KiB/%s live (the rest is the collector's headroom)\n", name, float64(h.RSSLive)/1024, h.LiveKiBPerConn, what)
		fmt.Fprintf(w, "%s: Sends one at a time (their own p50 %s ms); slowest wake-up %s ms; %d %ss delivered before their Send was answered, counted as 0\n", wakeName, ms(wk.SendP50), ms(wk.Max), wk.Early, what)
	}
	rep.groups.printNotes(w, o.clients)
	heldNotes("hold", "wake", "poll", rep.hold, rep.wake)
	fmt.Fprintln(w, "stream: GET /Message/Stream with query credentials, the response head read and checked (200, text/event-stream) once each wave settled")
	heldNotes("stream", "stream wake", "stream", rep.streamHold, rep.streamWake)
	if rep.sendTwoMySQL != nil {
		fmt.Fprintf(w, "send 2 instances: two module instances in this process on the send database, each with its own Redis client, %d clients split evenly; insert re-measured in alternating rounds (its own p50 / p99 %s / %s ms)\n",
			o.clients, ms(rep.insertTwoMySQL.P50), ms(rep.insertTwoMySQL.P99))
	}
	if rep.cluster != nil {
		fmt.Fprintln(w, "wake2 cluster, send 2 inst. cluster: the same workloads with the instances joined by a Redis Cluster of three masters started for the run (wake-ups over sharded pub/sub)")
	}
	if wk := rep.wake2; wk != nil {
		db := "one SQLite file (each process the module's one connection)"
		if rep.wake2DB == "mysql" {
			db = "a fresh MariaDB/MySQL database"
		}
		fmt.Fprintf(w, "wake2: polls held on one server process, Sends through a second on %s, wake-ups over a redis-server started for the run; Sends one at a time (their own p50 %s ms); slowest wake-up %s ms; %d polls delivered before their Send was answered, counted as 0\n",
			db, ms(wk.SendP50), ms(wk.Max), wk.Early)
	}
	for _, f := range []struct {
		name string
		r    *rate
	}{{"ceiling", &rep.ceiling}, {"info", &rep.info}, {"insert sqlite", &rep.insertSQLite}, {"send sqlite", &rep.sendSQLite}, {"ceiling (send's turns) sqlite", &rep.sendCeilingSQLite},
		{"insert mysql", rep.insertMySQL}, {"send mysql", rep.sendMySQL}, {"ceiling (send's turns) mysql", rep.sendCeilingMySQL},
		{"send 2 instances mysql", rep.sendTwoMySQL}, {"insert (2 instances) mysql", rep.insertTwoMySQL},
		{"send 2 instances cluster mysql", rep.sendTwoClusterMySQL}, {"insert (2 instances, cluster) mysql", rep.insertTwoClusterMySQL},
		{"history", &rep.history}, {"select history", &rep.selectHistory}, {"unread", &rep.unread}, {"select unread", &rep.selectUnread}} {
		if f.r != nil && f.r.Failed > 0 {
			fmt.Fprintf(w, "%s: first failure: %s\n", f.name, f.r.FirstFailure)
		}
	}

	b, _ := json.Marshal(rep.summary())
	fmt.Fprintf(w, "%s\n", b)
}

// summary is the last line: the keys first, then the raw figures.
type summary struct {
	InfoVsCeiling      float64  `json:"info_vs_ceiling"`
	SendVsInsertSQLite float64  `json:"send_vs_insert_sqlite"`
	SendVsInsertMySQL  *float64 `json:"send_vs_insert_mysql"`
	// SendSQLiteVsCeiling and SendMySQLVsCeiling are Send's rate over the
	// ceiling's, the two measured in turn (issue 27's targets).
	SendSQLiteVsCeiling float64  `json:"send_sqlite_vs_ceiling"`
	SendMySQLVsCeiling  *float64 `json:"send_mysql_vs_ceiling"`
	HistoryVsSelect     float64  `json:"history_vs_select"`
	UnreadVsSelect      float64  `json:"unread_vs_select"`
	HoldKiBPerPoll      float64  `json:"hold_kib_per_poll"`
	WakeP50Ms           float64  `json:"wake_p50_ms"`
	WakeP99Ms           float64  `json:"wake_p99_ms"`
	StreamKiBPerConn    float64  `json:"stream_kib_per_conn"`
	StreamWakeP50Ms     float64  `json:"stream_wake_p50_ms"`
	StreamWakeP99Ms     float64  `json:"stream_wake_p99_ms"`
	// The workloads of two instances: null when skipped (no
	// redis-server; send_two_instances_mysql also without --mysql-dsn).
	Wake2P50Ms *float64 `json:"wake2_p50_ms"`
	Wake2P99Ms *float64 `json:"wake2_p99_ms"`
	// Wake2Cluster* and SendTwoInstancesCluster* are the same on a Redis
	// Cluster (null without redis-server and redis-cli).
	Wake2ClusterP50Ms            *float64 `json:"wake2_cluster_p50_ms"`
	Wake2ClusterP99Ms            *float64 `json:"wake2_cluster_p99_ms"`
	SendTwoInstancesClusterMySQL *float64 `json:"send_two_instances_cluster_mysql"`
	SendTwoInstancesMySQL        *float64 `json:"send_two_instances_mysql"`
	groupKeys

	CeilingRPS float64 `json:"ceiling_rps"`
	// CeilingSend*RPS are the ceiling measured in turn with each
	// database's Send; CeilingRPS the one measured with info.
	CeilingSendSQLiteRPS float64  `json:"ceiling_send_sqlite_rps"`
	CeilingSendMySQLRPS  *float64 `json:"ceiling_send_mysql_rps"`
	InfoRPS              float64  `json:"info_rps"`
	InsertSQLiteRPS      float64  `json:"insert_sqlite_rps"`
	SendSQLiteRPS        float64  `json:"send_sqlite_rps"`
	InsertMySQLRPS       *float64 `json:"insert_mysql_rps"`
	SendMySQLRPS         *float64 `json:"send_mysql_rps"`
	HistoryRPS           float64  `json:"history_rps"`
	SelectHistoryRPS     float64  `json:"select_history_rps"`
	UnreadRPS            float64  `json:"unread_rps"`
	SelectUnreadRPS      float64  `json:"select_unread_rps"`
	SeedMessages         int      `json:"seed_messages"`
	SeedS                float64  `json:"seed_s"`
	Failed               int64    `json:"failed"`

	HoldPolls        int     `json:"hold_polls"`
	HoldRSSBeforeKiB int64   `json:"hold_rss_before_kib"`
	HoldRSSAfterKiB  int64   `json:"hold_rss_after_kib"`
	HoldLiveKiB      float64 `json:"hold_live_kib_per_poll"`
	WakePolls        int     `json:"wake_polls"`
	WakeMaxMs        float64 `json:"wake_max_ms"`
	WakeEarly        int     `json:"wake_early"`

	StreamConns          int     `json:"stream_conns"`
	StreamRSSBeforeKiB   int64   `json:"stream_rss_before_kib"`
	StreamRSSAfterKiB    int64   `json:"stream_rss_after_kib"`
	StreamLiveKiBPerConn float64 `json:"stream_live_kib_per_conn"`
	StreamWakeConns      int     `json:"stream_wake_conns"`
	StreamWakeMaxMs      float64 `json:"stream_wake_max_ms"`
	StreamWakeEarly      int     `json:"stream_wake_early"`

	Wake2DB                  string   `json:"wake2_db"`
	Wake2Polls               int      `json:"wake2_polls"`
	Wake2MaxMs               *float64 `json:"wake2_max_ms"`
	Wake2Early               int      `json:"wake2_early"`
	SendTwoInstancesMySQLRPS *float64 `json:"send_two_instances_mysql_rps"`
	InsertTwoInstancesRPS    *float64 `json:"send_two_instances_insert_mysql_rps"`
	SendTwoClusterMySQLRPS   *float64 `json:"send_two_instances_cluster_mysql_rps"`
	groupFigures

	Clients   int     `json:"clients"`
	DurationS float64 `json:"duration_s"`
	CPUs      int     `json:"cpus"`
	Go        string  `json:"go"`
}

func (rep *report) summary() summary {
	s := summary{
		InfoVsCeiling:        round(ratio(rep.info, rep.ceiling), 3),
		SendVsInsertSQLite:   round(ratio(rep.sendSQLite, rep.insertSQLite), 3),
		SendSQLiteVsCeiling:  round(ratio(rep.sendSQLite, rep.sendCeilingSQLite), 3),
		CeilingSendSQLiteRPS: round(rep.sendCeilingSQLite.PerSec(), 0),
		HoldKiBPerPoll:       round(rep.hold.KiBPerConn, 2),
		WakeP50Ms:            round(msf(rep.wake.P50), 3),
		WakeP99Ms:            round(msf(rep.wake.P99), 3),
		CeilingRPS:           round(rep.ceiling.PerSec(), 0),
		InfoRPS:              round(rep.info.PerSec(), 0),
		InsertSQLiteRPS:      round(rep.insertSQLite.PerSec(), 0),
		SendSQLiteRPS:        round(rep.sendSQLite.PerSec(), 0),
		HistoryVsSelect:      round(ratio(rep.history, rep.selectHistory), 3),
		UnreadVsSelect:       round(ratio(rep.unread, rep.selectUnread), 3),
		HistoryRPS:           round(rep.history.PerSec(), 0),
		SelectHistoryRPS:     round(rep.selectHistory.PerSec(), 0),
		UnreadRPS:            round(rep.unread.PerSec(), 0),
		SelectUnreadRPS:      round(rep.selectUnread.PerSec(), 0),
		SeedMessages:         rep.seedMessages,
		SeedS:                round(rep.seedTime.Seconds(), 1),
		Failed:               rep.failed(),
		HoldPolls:            rep.hold.Conns,
		HoldRSSBeforeKiB:     rep.hold.RSSBefore,
		HoldRSSAfterKiB:      rep.hold.RSSAfter,
		HoldLiveKiB:          round(rep.hold.LiveKiBPerConn, 2),
		WakePolls:            rep.wake.Conns,
		WakeMaxMs:            round(msf(rep.wake.Max), 3),
		WakeEarly:            rep.wake.Early,
		StreamKiBPerConn:     round(rep.streamHold.KiBPerConn, 2),
		StreamWakeP50Ms:      round(msf(rep.streamWake.P50), 3),
		StreamWakeP99Ms:      round(msf(rep.streamWake.P99), 3),
		StreamConns:          rep.streamHold.Conns,
		StreamRSSBeforeKiB:   rep.streamHold.RSSBefore,
		StreamRSSAfterKiB:    rep.streamHold.RSSAfter,
		StreamLiveKiBPerConn: round(rep.streamHold.LiveKiBPerConn, 2),
		StreamWakeConns:      rep.streamWake.Conns,
		StreamWakeMaxMs:      round(msf(rep.streamWake.Max), 3),
		StreamWakeEarly:      rep.streamWake.Early,
		Clients:              rep.opts.clients,
		DurationS:            rep.opts.duration.Seconds(),
		CPUs:                 runtime.NumCPU(),
		Go:                   runtime.Version(),
	}
	if rep.sendMySQL != nil {
		r := round(ratio(*rep.sendMySQL, *rep.insertMySQL), 3)
		ins, send := round(rep.insertMySQL.PerSec(), 0), round(rep.sendMySQL.PerSec(), 0)
		s.SendVsInsertMySQL, s.InsertMySQLRPS, s.SendMySQLRPS = &r, &ins, &send
		c, cr := round(ratio(*rep.sendMySQL, *rep.sendCeilingMySQL), 3), round(rep.sendCeilingMySQL.PerSec(), 0)
		s.SendMySQLVsCeiling, s.CeilingSendMySQLRPS = &c, &cr
	}
	if rep.sendTwoMySQL != nil {
		r := round(ratio(*rep.sendTwoMySQL, *rep.insertTwoMySQL), 3)
		ins, send := round(rep.insertTwoMySQL.PerSec(), 0), round(rep.sendTwoMySQL.PerSec(), 0)
		s.SendTwoInstancesMySQL, s.InsertTwoInstancesRPS, s.SendTwoInstancesMySQLRPS = &r, &ins, &send
	}
	if rep.sendTwoClusterMySQL != nil {
		r := round(ratio(*rep.sendTwoClusterMySQL, *rep.insertTwoClusterMySQL), 3)
		send := round(rep.sendTwoClusterMySQL.PerSec(), 0)
		s.SendTwoInstancesClusterMySQL, s.SendTwoClusterMySQLRPS = &r, &send
	}
	if w := rep.wake2Cluster; w != nil {
		p50, p99 := round(msf(w.P50), 3), round(msf(w.P99), 3)
		s.Wake2ClusterP50Ms, s.Wake2ClusterP99Ms = &p50, &p99
	}
	s.groupKeys, s.groupFigures = rep.groups.summary()
	if w := rep.wake2; w != nil {
		p50, p99, mx := round(msf(w.P50), 3), round(msf(w.P99), 3), round(msf(w.Max), 3)
		s.Wake2P50Ms, s.Wake2P99Ms, s.Wake2MaxMs = &p50, &p99, &mx
		s.Wake2DB, s.Wake2Polls, s.Wake2Early = rep.wake2DB, w.Conns, w.Early
	}
	return s
}

func ratio(r, ref rate) float64 {
	if ref.PerSec() == 0 {
		return 0
	}
	return r.PerSec() / ref.PerSec()
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", msf(d)) }

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}
