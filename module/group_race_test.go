package module_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
)

// span is when an operation ran, on the test's own clock: a counter taken
// before it was asked and after it was answered, so that a.end < b.start
// means a was done before b began.
type span struct{ start, end int64 }

// TestGroupExactUnderChurn sends to a group from three members while six
// others are added (and three of those removed again) and every member
// reads its cursor all along. Each member must see each message exactly
// once; every message sent wholly while they were in; none sent wholly
// before they joined or after they left; and for those still in, unread
// plus what they marked read is what they received.
func TestGroupExactUnderChurn(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		var clock atomic.Int64
		owner := s.NewUser(t, "owner")
		var senders, churn []chattest.User
		for i := range 3 {
			u := s.NewUser(t, "s"+string(rune('a'+i)))
			s.Befriend(t, owner, u)
			senders = append(senders, u)
		}
		for i := range 6 {
			u := s.NewUser(t, "m"+string(rune('a'+i)))
			s.Befriend(t, owner, u)
			churn = append(churn, u)
		}
		gid := into[groupCreated](t, gcall(t, s, owner, "/Group/create", map[string]any{"name": "busy", "data": members(senders...)}, 200, 0)).GID
		// Some 1:1 messages first, so that the group's ids and its seqs
		// differ, and a mix-up of the two shows.
		for range 5 {
			mustSend(t, s, owner, senders[0], "1:1")
		}

		type sent struct {
			id   int64
			from int64
			span
		}
		var (
			mu    sync.Mutex
			sends []sent
			joins = map[int64]span{}
			quits = map[int64]span{}
		)
		stop := make(chan struct{})
		received := make(map[int64][]int64)
		var readers sync.WaitGroup
		for _, u := range churn {
			readers.Add(1)
			go func() {
				defer readers.Done()
				var cursor int64
				for {
					select {
					case <-stop:
						return
					default:
					}
					r := s.Post(t, "/Message/Recv", u.Creds(map[string]any{"last_id": cursor, "limit": 7}))
					if r.Status != 200 {
						t.Errorf("recv: %s", r.String())
						return
					}
					got := into[groupMsgs](t, r)
					mu.Lock()
					for _, m := range got.Data {
						received[u.UID] = append(received[u.UID], m.ID)
					}
					mu.Unlock()
					cursor = got.LastID
				}
			}()
		}
		var work sync.WaitGroup
		for _, u := range senders {
			work.Add(1)
			go func() {
				defer work.Done()
				for range 25 {
					start := clock.Add(1)
					id := groupSend(t, s, u, gid, "x")
					end := clock.Add(1)
					mu.Lock()
					sends = append(sends, sent{id, u.UID, span{start, end}})
					mu.Unlock()
				}
			}()
		}
		work.Add(1)
		go func() {
			defer work.Done()
			for i, u := range churn {
				start := clock.Add(1)
				gcall(t, s, owner, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(u)}, 200, 0)
				joins[u.UID] = span{start, clock.Add(1)}
				if i%2 == 1 {
					prev := churn[i-1]
					start := clock.Add(1)
					gcall(t, s, owner, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(prev)}, 200, 0)
					quits[prev.UID] = span{start, clock.Add(1)}
				}
			}
		}()
		work.Wait()
		close(stop)
		readers.Wait()

		for _, u := range churn {
			// Drain what is left past the last cursor.
			ids := received[u.UID]
			var cursor int64
			if len(ids) > 0 {
				cursor = ids[len(ids)-1]
			}
			rest := into[groupMsgs](t, gcall(t, s, u, "/Message/Recv", map[string]any{"last_id": cursor, "limit": 500}, 200, 0))
			for _, m := range rest.Data {
				ids = append(ids, m.ID)
			}
			seen := map[int64]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("member %d received message %d twice", u.UID, id)
				}
				seen[id] = true
			}
			join, quit, left := joins[u.UID], quits[u.UID], false
			if _, ok := quits[u.UID]; ok {
				left = true
			}
			for _, m := range sends {
				during := m.start > join.end && (!left || m.end < quit.start)
				outside := m.end < join.start || (left && m.start > quit.end)
				switch {
				case during && !seen[m.id]:
					t.Errorf("member %d missed message %d sent while they were in", u.UID, m.id)
				case outside && seen[m.id]:
					t.Errorf("member %d received message %d sent while they were out", u.UID, m.id)
				}
			}
			if left {
				continue
			}
			// unread + read = received (nothing read yet: all unread).
			un := gcall(t, s, u, "/Message/Unread", nil, 200, 0)
			var count int64
			for _, e := range un.Body["data"].([]any) {
				count += int64(e.(map[string]any)["count"].(float64))
			}
			if half := len(ids) / 2; half > 0 {
				n := gcall(t, s, u, "/Message/Read", map[string]any{"gid": gid, "last_id": ids[half-1]}, 200, 0).Int("num")
				un2 := gcall(t, s, u, "/Message/Unread", nil, 200, 0)
				var after int64
				for _, e := range un2.Body["data"].([]any) {
					after += int64(e.(map[string]any)["count"].(float64))
				}
				if n != int64(half) || after+n != int64(len(ids)) {
					t.Errorf("member %d: read %d (want %d), unread after %d, received %d", u.UID, n, half, after, len(ids))
				}
			}
			if count != int64(len(ids)) {
				t.Errorf("member %d: unread %d, received %d", u.UID, count, len(ids))
			}
		}
		// Each sender's own Send moved their mark past it, in batches that
		// held several senders: what is unread to them is exactly what
		// others sent after their last message.
		for _, u := range senders {
			var last int64
			for _, m := range sends {
				if m.from == u.UID {
					last = max(last, m.id)
				}
			}
			want := s.Count(t, "messages", "gid = ? AND id > ?", gid, last)
			un := gcall(t, s, u, "/Message/Unread", nil, 200, 0)
			var got int64
			for _, e := range un.Body["data"].([]any) {
				if e := e.(map[string]any); e["gid"] == float64(gid) {
					got += int64(e["count"].(float64))
				}
			}
			if got != want {
				t.Errorf("sender %d: unread %d, want %d (sent after their last, %d)", u.UID, got, want, last)
			}
		}
		if n := s.Count(t, "messages", "gid = ?", gid); n != int64(len(sends)) {
			t.Fatalf("%d group messages stored for %d sends", n, len(sends))
		}
	})
}
