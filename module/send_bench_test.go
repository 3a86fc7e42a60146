package module_test

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// The benchmarks below are the server's side of a Send and of an Info,
// on a module with its defaults on a SQLite file: each request runs
// through the app's handler on a fasthttp.RequestCtx of its own, without
// sockets, by as many goroutines as the bench's clients (64), so Sends
// meet in group commits as they do under load. What a Send costs beyond
// an Info is what /Message/Send adds to the ceiling (issue 27):
// allocations are exact, ns/op is the machine's.

const benchSenders = 64

// benchPairs serves the module on SQLite with benchSenders pairs of users
// who are contacts.
func benchPairs(b *testing.B) (*chattest.Server, [][2]chattest.User) {
	return benchPairsOn(b, chattest.OpenSQLite(b))
}

// benchPairsOn is benchPairs on db.
func benchPairsOn(b *testing.B, db *chattest.DB) (*chattest.Server, [][2]chattest.User) {
	s := chattest.NewServer(b, db, chattest.Options{Config: func(c *module.Config) {
		c.LoginRateLimit, c.RegisterRateLimit = -1, -1
	}})
	pairs := make([][2]chattest.User, benchSenders)
	for i := range pairs {
		pairs[i] = [2]chattest.User{s.NewUser(b, fmt.Sprint("from", i)), s.NewUser(b, fmt.Sprint("to", i))}
		s.Befriend(b, pairs[i][0], pairs[i][1])
	}
	return s, pairs
}

// runParallel runs body, made for each worker from its pair, by
// benchSenders goroutines, and fails unless every request answers 200.
func runParallel(b *testing.B, s *chattest.Server, pairs [][2]chattest.User, path string, body func(p [2]chattest.User, seq int) string) {
	uri := path + "?client_id=" + s.ClientID + "&api_token=" + s.Sign(path)
	h := s.App.Handler()
	var worker, failed atomic.Int64
	b.SetParallelism((benchSenders + 1) / 2) // GOMAXPROCS 2 on the bench machine
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := pairs[int(worker.Add(1)-1)%len(pairs)]
		var req fasthttp.Request
		req.Header.SetMethod(fiber.MethodPost)
		req.SetRequestURI(uri)
		req.Header.SetContentType(fiber.MIMEApplicationJSON)
		var ctx fasthttp.RequestCtx
		for seq := 0; pb.Next(); seq++ {
			req.SetBodyString(body(p, seq))
			ctx.Init(&req, nil, nil)
			h(&ctx)
			if ctx.Response.StatusCode() != fiber.StatusOK || !strings.Contains(string(ctx.Response.Body()), `"error":0`) {
				failed.Add(1)
			}
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
}

// sendBody is a Send from p's first user to its second, numbered seq.
func sendBody(p [2]chattest.User, seq int) string {
	return fmt.Sprintf(`{"uid":%d,"access_token":"%s","uid_to":%d,"data":"benchmark message number %d"}`, p[0].UID, p[0].Token, p[1].UID, seq)
}

// BenchmarkSend is /Message/Send, each worker messaging its own contact.
func BenchmarkSend(b *testing.B) {
	s, pairs := benchPairs(b)
	runParallel(b, s, pairs, "/Message/Send", sendBody)
}

// BenchmarkSendMySQL is BenchmarkSend on a fresh MariaDB/MySQL database
// (FIBERCHAT_TEST_MYSQL_DSN), whose server shares the machine's CPUs as
// in the bench: what it costs there is mostly mariadbd's.
func BenchmarkSendMySQL(b *testing.B) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		b.Skip(chattest.MySQLEnv + " is not set")
	}
	s, pairs := benchPairsOn(b, chattest.OpenMySQL(b, base))
	runParallel(b, s, pairs, "/Message/Send", sendBody)
}

// BenchmarkInfo is /user/info, Send's reference.
func BenchmarkInfo(b *testing.B) {
	s, pairs := benchPairs(b)
	runParallel(b, s, pairs, "/user/info", func(p [2]chattest.User, _ int) string {
		return fmt.Sprintf(`{"uid":%d,"access_token":"%s"}`, p[0].UID, p[0].Token)
	})
}

// BenchmarkUnread is /Message/Unread on a conversation with unread
// messages: the cheapest request with a query.
func BenchmarkUnread(b *testing.B) {
	s, pairs := benchPairs(b)
	for _, p := range pairs {
		chattest.Expect(b, s.Post(b, "/Message/Send", p[1].Creds(map[string]any{"uid_to": p[0].UID, "data": "unread"})), 200, 0)
	}
	runParallel(b, s, pairs, "/Message/Unread", func(p [2]chattest.User, _ int) string {
		return fmt.Sprintf(`{"uid":%d,"access_token":"%s"}`, p[0].UID, p[0].Token)
	})
}

// groupBenchSize is the group of BenchmarkGroupSendMySQL: the bench's.
const groupBenchSize = 100

// BenchmarkGroupSendMySQL is /Message/Send into one group of
// groupBenchSize members by benchSenders of them, as the bench's group
// send workload, on a fresh MariaDB/MySQL database
// (FIBERCHAT_TEST_MYSQL_DSN): a group Send locks every member's row.
func BenchmarkGroupSendMySQL(b *testing.B) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		b.Skip(chattest.MySQLEnv + " is not set")
	}
	s := chattest.NewServer(b, chattest.OpenMySQL(b, base), chattest.Options{Config: func(c *module.Config) {
		c.LoginRateLimit, c.RegisterRateLimit = -1, -1
	}})
	members := make([]chattest.User, groupBenchSize)
	invite := make([]map[string]any, 0, groupBenchSize-1)
	for i := range members {
		members[i] = s.NewUser(b, fmt.Sprint("member", i))
		if i > 0 {
			s.Befriend(b, members[0], members[i])
			invite = append(invite, map[string]any{"uid": members[i].UID})
		}
	}
	made := s.Post(b, "/Group/create", members[0].Creds(map[string]any{"name": "bench", "data": invite}))
	chattest.Expect(b, made, 200, 0)
	if n := made.Int("num"); n != groupBenchSize-1 {
		b.Fatalf("group made with %d members added: %s", n, made)
	}
	gid := made.Int("gid")
	pairs := make([][2]chattest.User, benchSenders)
	for i := range pairs {
		pairs[i] = [2]chattest.User{members[i], members[i]}
	}
	runParallel(b, s, pairs, "/Message/Send", func(p [2]chattest.User, seq int) string {
		return fmt.Sprintf(`{"uid":%d,"access_token":"%s","gid":%d,"data":"benchmark message number %d"}`, p[0].UID, p[0].Token, gid, seq)
	})
}
