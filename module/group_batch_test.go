package module_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// TestGroupBatchCounts sends into two groups from several members at
// once, so that batches hold both groups and several messages of one
// sender, and checks what the batches wrote against the messages stored:
// each group's seq and last_id, its messages' gseq (1, 2, … in id order)
// and each sender's read mark (their newest message in the group). On
// MySQL/MariaDB the group writer's own connection writes these in one
// round trip, from ids the server hands out (see GroupWriter).
func TestGroupBatchCounts(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		owner := s.NewUser(t, "owner")
		var senders []chattest.User
		for i := range 6 {
			u := s.NewUser(t, fmt.Sprint("s", i))
			s.Befriend(t, owner, u)
			senders = append(senders, u)
		}
		var gids []int64
		for _, name := range []string{"one", "two"} {
			gids = append(gids, into[groupCreated](t, gcall(t, s, owner, "/Group/create", map[string]any{"name": name, "data": members(senders...)}, 200, 0)).GID)
		}
		const each = 12
		var wg sync.WaitGroup
		for i, u := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					gid := gids[(i+k)%len(gids)]
					r := s.Post(t, "/Message/Send", u.Creds(map[string]any{"gid": gid, "data": fmt.Sprintf("%d from %d", k, i)}))
					if r.Status != 200 {
						t.Errorf("send: %s", r.String())
						return
					}
				}
			}()
		}
		wg.Wait()

		gdb := s.Module.DB()
		total := 0
		for _, gid := range gids {
			var msgs []models.Message
			if err := gdb.Where("gid = ?", gid).Order("id").Find(&msgs).Error; err != nil {
				t.Fatal(err)
			}
			total += len(msgs)
			newest := map[int64]models.Message{}
			for i, m := range msgs {
				if m.GSeq != int64(i+1) {
					t.Fatalf("group %d: message %d has gseq %d, want %d", gid, m.ID, m.GSeq, i+1)
				}
				newest[m.FromUID] = m
			}
			var g models.Group
			if err := gdb.Where("gid = ?", gid).Take(&g).Error; err != nil {
				t.Fatal(err)
			}
			if last := msgs[len(msgs)-1]; g.Seq != int64(len(msgs)) || g.LastID != last.ID {
				t.Fatalf("group %d: seq %d and last_id %d, want %d and %d", gid, g.Seq, g.LastID, len(msgs), last.ID)
			}
			for _, u := range senders {
				var gm models.GroupMember
				if err := gdb.Where("gid = ? AND uid = ?", gid, u.UID).Take(&gm).Error; err != nil {
					t.Fatal(err)
				}
				want := newest[u.UID]
				if gm.ReadID != want.ID || gm.ReadSeq != want.GSeq {
					t.Fatalf("group %d, sender %d: read mark (%d, %d), want (%d, %d)", gid, u.UID, gm.ReadID, gm.ReadSeq, want.ID, want.GSeq)
				}
			}
		}
		if total != each*len(senders) {
			t.Fatalf("%d group messages stored, want %d", total, each*len(senders))
		}
	})
}
