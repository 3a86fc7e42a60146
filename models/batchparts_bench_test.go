package models

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/migrations"
	gomysql "github.com/go-sql-driver/mysql"
)

// partsBatch is the batch size BenchmarkBatchParts measures: about what
// the bench's 64 Send clients make on MariaDB, half of them in a batch
// while the other half waits for the next.
const partsBatch = 31

// BenchmarkBatchParts measures the statements of a 1:1 batch on
// MariaDB/MySQL (FIBERCHAT_TEST_MYSQL_DSN) one part at a time, each part
// followed by COMMIT, on a connection set up as a writer's own (see
// batchConn): the checks' locking read, the INSERT, the INSERT with the
// counters' upsert, and the whole batch as optimisticBatch sends it. It
// reports each part's time a message and, when the server runs on this
// machine, mariadbd's processor time a message, read from /proc: what a
// batch costs the server, part by part, without the HTTP side around it.
func BenchmarkBatchParts(b *testing.B) {
	base := os.Getenv("FIBERCHAT_TEST_MYSQL_DSN")
	if base == "" {
		b.Skip("FIBERCHAT_TEST_MYSQL_DSN is not set")
	}
	ctx := context.Background()
	s, conn := partsStore(b, base)
	from, to := partsUsers(b, s)
	c, err := conn.get(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(conn.discard)

	var seq int
	newBatch := func() ([]*writeReq, []*Message) {
		batch := make([]*writeReq, partsBatch)
		rows := make([]*Message, partsBatch)
		now := time.Now().UnixMilli()
		for i := range batch {
			seq++
			key := "parts-" + strconv.Itoa(seq)
			r := &writeReq{}
			r.msg = Message{FromUID: from[i], ToUID: to[i], Body: "a message of forty bytes, as the bench's", CreatedAt: now, ClientMsgID: &key}
			r.m = &r.msg
			r.m.setPair()
			batch[i], rows[i] = r, r.m
		}
		return batch, rows
	}
	run := func(b *testing.B, q string, args ...any) {
		res, err := c.QueryContext(ctx, q, args...)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Close()
		for res.Next() || res.NextResultSet() {
		}
		if err := res.Err(); err != nil {
			b.Fatal(err)
		}
	}
	parts := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"checks", func(b *testing.B) {
			batch, _ := newBatch()
			q, err := s.lockAndCheckSQL(nil, batchPairs(batch))
			if err != nil {
				b.Fatal(err)
			}
			run(b, string(q))
		}},
		{"insert", func(b *testing.B) {
			_, rows := newBatch()
			q, args, err := s.insertSQL(nil, nil, rows, !conn.escapes)
			if err != nil {
				b.Fatal(err)
			}
			run(b, string(q), args...)
		}},
		{"insert+counters", func(b *testing.B) {
			_, rows := newBatch()
			q, args, err := s.insertSQL(nil, nil, rows, !conn.escapes)
			if err != nil {
				b.Fatal(err)
			}
			if q, err = s.countSQL(append(q, "; "...), rows, conn.idStep); err != nil {
				b.Fatal(err)
			}
			run(b, string(q), args...)
		}},
		{"batch", func(b *testing.B) {
			batch, _ := newBatch()
			if _, ok, err := s.optimisticBatch(ctx, c, batch, conn); err != nil || !ok {
				b.Fatalf("optimistic batch: ok %v, %v", ok, err)
			}
		}},
	}
	server := localServerPID(b)
	for _, p := range parts {
		b.Run(p.name, func(b *testing.B) {
			cpu0 := processCPU(server)
			start := time.Now()
			for b.Loop() {
				p.run(b)
				if err := conn.end(ctx, nil); err != nil {
					b.Fatal(err)
				}
			}
			msgs := float64(b.N * partsBatch)
			b.ReportMetric(float64(time.Since(start).Microseconds())/msgs, "µs/msg")
			if server != 0 {
				b.ReportMetric((processCPU(server)-cpu0)*1e6/msgs, "mariadbd-µs/msg")
			}
		})
	}
}

// partsStore migrates a fresh database beside base's, dropped after the
// benchmark, and returns its store and a writer's connection to it. It
// is chattest.OpenMySQL's work done again: this benchmark needs the
// package's internals, and chattest imports the package.
func partsStore(b *testing.B, base string) (*Store, *batchConn) {
	cfg, err := gomysql.ParseDSN(base)
	if err != nil {
		b.Fatal(err)
	}
	admin, err := sql.Open("mysql", base)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = admin.Close() })
	name := "fiberchat_test_" + randomName(b)
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name) })
	cfg.DBName = name
	g, err := database.Open(context.Background(), "mysql:"+cfg.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = database.Close(g) })
	pool, err := g.DB()
	if err != nil {
		b.Fatal(err)
	}
	if err := migrations.Up(context.Background(), pool, migrations.MySQL, "", slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	s := NewStore(g, 0)
	own, err := openBatchPool(g, 1, s.timeout, nil)
	if err != nil || own == nil {
		b.Fatalf("open a writer's pool: %v", err)
	}
	b.Cleanup(func() { _ = own.Close() })
	return s, &batchConn{pool: own, multi: true, twoTrips: &atomic.Int64{}}
}

// partsUsers makes partsBatch senders and as many recipients, each
// sender a contact of its recipient, as the bench's pairs are.
func partsUsers(b *testing.B, s *Store) (from, to []int64) {
	ctx := context.Background()
	for i := range 2 * partsBatch {
		u := &User{Name: fmt.Sprintf("parts%d", i), CreatedAt: 1, UpdatedAt: 1}
		if err := s.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		if i < partsBatch {
			from = append(from, u.UID)
		} else {
			to = append(to, u.UID)
		}
	}
	for i := range from {
		if err := s.db.Create([]Contact{{UID: from[i], PeerUID: to[i], CreatedAt: 1}, {UID: to[i], PeerUID: from[i], CreatedAt: 1}}).Error; err != nil {
			b.Fatal(err)
		}
	}
	return from, to
}

func randomName(b *testing.B) string {
	p := make([]byte, 6)
	if _, err := rand.Read(p); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(p)
}

// localServerPID returns the pid of the one mariadbd (or mysqld) running
// on this machine, 0 when there is none, several, or no /proc to read.
func localServerPID(b *testing.B) int {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	pid := 0
	for _, f := range comms {
		comm, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if name := strings.TrimSpace(string(comm)); name == "mariadbd" || name == "mysqld" {
			if pid != 0 {
				b.Log("several database servers on this machine: mariadbd's time not read")
				return 0
			}
			pid, _ = strconv.Atoi(filepath.Base(filepath.Dir(f)))
		}
	}
	return pid
}

// processCPU returns the processor time, user and system, that process
// pid has used, in seconds (0 when pid is 0 or cannot be read).
func processCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command, which may hold spaces, in brackets.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	user, _ := strconv.ParseFloat(fields[11], 64)
	system, _ := strconv.ParseFloat(fields[12], 64)
	// The kernel counts in clock ticks, 100 a second on Linux.
	return (user + system) / 100
}
