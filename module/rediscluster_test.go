package module_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// clusterPair is redisPair on a Redis Cluster of three masters.
func clusterPair(t *testing.T, db *chattest.DB, replicas int, config func(*module.Config)) (*chattest.RedisCluster, *chattest.Server, *chattest.Server) {
	t.Helper()
	rc := chattest.StartRedisCluster(t, replicas)
	opts := func() chattest.Options {
		client := rc.Client(t)
		return chattest.Options{Config: func(c *module.Config) {
			c.Redis = client
			if config != nil {
				config(c)
			}
		}}
	}
	a := chattest.NewServer(t, db, opts())
	b := a.Twin(t, opts())
	chattest.AwaitRedis(t, a, b)
	return rc, a, b
}

// TestRedisClusterAcrossInstances: two instances on a Redis Cluster
// behave as one, as on one Redis: a Send through one answers a long poll
// on the other, 1:1 and to a group, over sharded wake-up channels that
// only the instance with the poll subscribes to; a logout on one ends the session on
// the other; rate limits count across both.
func TestRedisClusterAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := clusterPair(t, db, 0, func(c *module.Config) { c.RegisterRateLimit = 5 })
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		polls := startCross(t, a, bob, 0, 20*time.Second)
		settleCross()
		id := mustSend(t, b, alice, bob, "across the cluster")
		if got := awaitCross(t, polls, 2*time.Second); len(got.Messages) != 1 || got.Messages[0].ID != id {
			t.Fatalf("poll on A got %+v, want %d", got, id)
		}
		// Wake-ups are sharded: A hears only the shard bob's poll needs,
		// B, with nobody waiting, none.
		if got, want := module.WakeShards(a.Module), []int{int(bob.UID % 16)}; !slices.Equal(got, want) {
			t.Fatalf("A subscribed to wake-up shards %v, want %v", got, want)
		}
		if got := module.WakeShards(b.Module); got != nil {
			t.Fatalf("B subscribed to wake-up shards %v, want none", got)
		}
		gid := into[groupCreated](t, gcall(t, a, alice, "/Group/create", map[string]any{"name": "g", "data": members(bob)}, 200, 0)).GID
		polls = startCross(t, a, bob, id, 20*time.Second)
		settleCross()
		gm := groupSend(t, b, alice, gid, "to the group")
		if got := awaitCross(t, polls, 2*time.Second); len(got.Messages) != 1 || got.Messages[0].ID != gm {
			t.Fatalf("poll on A got %+v, want group message %d", got, gm)
		}

		onB := b.SDKFor(t, bob)
		info(t, onB)
		if err := a.SDKFor(t, bob).Logout(context.Background()); err != nil {
			t.Fatal(err)
		}
		awaitRefusedOn(t, onB, 401, 1004)

		// Registrations from one address, alice's and bob's included: the
		// limit counts on both instances.
		codes := ""
		for i := range 4 {
			s := a
			if i%2 == 1 {
				s = b
			}
			r := s.Post(t, "/user/reg/ajax_reg", map[string]any{"name": fmt.Sprint("u", i), "passwd": "password-123"})
			codes += fmt.Sprint(r.Status, " ")
		}
		if codes != "200 200 200 429 " {
			t.Fatalf("registrations answered %s, want the limit of 5 counted across both", codes)
		}
	})
}

// TestRedisClusterMasterKilled kills a master of a Redis Cluster (three
// masters, a replica each) while one instance holds a member's long polls
// and Sends go through the other: no Send and no poll fails, every
// message reaches the poller's cursor exactly once (through the database
// fallback while the cluster fails over, by wake-ups again after), and
// registrations keep being answered by the limiter, never with a 500.
func TestRedisClusterMasterKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rc, a, b := clusterPair(t, db, 1, nil)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)

		got := make(chan int64, 1000)
		stop := make(chan struct{})
		polled := make(chan error, 1)
		go func() {
			c := a.SDKFor(t, bob)
			var cursor int64
			for {
				select {
				case <-stop:
					polled <- nil
					return
				default:
				}
				r, err := c.Recv(context.Background(), client.RecvRequest{LastID: &cursor, Wait: 2 * time.Second})
				if err != nil {
					polled <- err
					return
				}
				for _, m := range r.Messages {
					got <- m.ID
				}
				cursor = r.LastID
			}
		}()

		var sent []int64
		masters := rc.Masters(t)
		if len(masters) != 3 {
			t.Fatalf("%d masters, want 3", len(masters))
		}
		for i := range 40 {
			if i == 10 {
				masters[0].Kill(t)
			}
			sent = append(sent, mustSend(t, b, alice, bob, fmt.Sprint("m", i)))
			if i%5 == 0 {
				r := b.Post(t, "/user/reg/ajax_reg", map[string]any{"name": fmt.Sprint("r", i), "passwd": "password-123"})
				if r.Status != 200 && r.Status != 429 {
					t.Fatalf("register during the failover: %s", r.String())
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		rc.AwaitOK(t, masters[0])

		seen := map[int64]int{}
		deadline := time.After(15 * time.Second)
		for len(seen) < len(sent) {
			select {
			case id := <-got:
				seen[id]++
			case err := <-polled:
				t.Fatalf("the poller stopped: %v", err)
			case <-deadline:
				t.Fatalf("%d of %d messages reached the poll on A", len(seen), len(sent))
			}
		}
		close(stop)
		for _, id := range sent {
			if seen[id] != 1 {
				t.Fatalf("message %d seen %d times", id, seen[id])
			}
		}
		if err := <-polled; err != nil {
			t.Fatalf("a poll failed: %v", err)
		}
	})
}
