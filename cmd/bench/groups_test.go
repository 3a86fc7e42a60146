package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
)

// groupTestDSNs are the databases the group workloads' tests run on:
// SQLite, and a fresh MariaDB/MySQL database when the tests have one.
func groupTestDSNs(t *testing.T) map[string]string {
	t.Helper()
	dsns := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "g.db")}
	if base := os.Getenv("FIBERCHAT_TEST_MYSQL_DSN"); base != "" {
		ms, err := newMySQLServer(context.Background(), base)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := ms.close(); err != nil {
				t.Error(err)
			}
		})
		if dsns["mysql"], err = ms.fresh(context.Background(), "gtest"); err != nil {
			t.Fatal(err)
		}
	}
	return dsns
}

// TestGroupSend runs a short group send and checks that it measured both
// sides and that every round's check found each message on the cursor
// of each member but its sender.
func TestGroupSend(t *testing.T) {
	for kind, dsn := range groupTestDSNs(t) {
		t.Run(kind, func(t *testing.T) {
			rep := &report{opts: options{clients: 4, rounds: 2, warmup: 50 * time.Millisecond, duration: 400 * time.Millisecond}}
			send, ref, err := rep.groupSend(context.Background(), kind, dsn, t.TempDir(), warnLogger(testWriter{t}), t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if send.OK == 0 || ref.OK == 0 || send.Failed+ref.Failed > 0 {
				t.Fatalf("group send %d ok %d failed, 1:1 send %d ok %d failed; want some, none failed (%s%s)", send.OK, send.Failed, ref.OK, ref.Failed, send.FirstFailure, ref.FirstFailure)
			}
			// Every message stored reaches the other groupSize-1 members,
			// warm-ups included.
			if d := rep.groups.delivered; d%(groupSize-1) != 0 || d < send.OK*(groupSize-1) {
				t.Fatalf("%d deliveries checked for %d measured messages; want a multiple of %d, at least %d", d, send.OK, groupSize-1, send.OK*(groupSize-1))
			}
		})
	}
}

// TestGroupSendCheck checks that the delivery check is no formality: it
// fails when a member lacks a message the round stored, and when a
// member has one no Send of the round stored.
func TestGroupSendCheck(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "g.db")
	var contacts [][2]int
	for k := 1; k < groupSize; k++ {
		contacts = append(contacts, [2]int{0, k})
	}
	log := warnLogger(testWriter{t})
	fx, err := prepare(ctx, dsn, groupSize, contacts, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startChat(ctx, dsn, "127.0.0.1:0", t.TempDir(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	gid, err := createGroup(ctx, srv.addr, fx, fx.users)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGroupSendLoad(srv.addr, fx, fx.users, gid, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	start := g.cursor
	if _, err := g.round(ctx, phase{duration: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	from := map[int64]int64{}
	for i, ids := range g.send.sent {
		for _, id := range ids {
			from[id] = g.send.from[i].UID
		}
	}
	if len(from) == 0 {
		t.Fatal("the round stored nothing")
	}
	end := g.cursor
	g.cursor = start
	// Member 5 sends nothing (two workers send, as members 0 and 1).
	if n, err := g.check(ctx, 5, from, false); err != nil || n != len(from) {
		t.Fatalf("check of a good round: %d, %v; want %d, nil", n, err, len(from))
	}
	missing := map[int64]int64{end + 1000: fx.users[0].UID}
	for id, uid := range from {
		missing[id] = uid
	}
	if _, err := g.check(ctx, 5, missing, false); err == nil || !strings.Contains(err.Error(), "of the round's") {
		t.Errorf("check with a message never delivered: %v; want it to fail", err)
	}
	delete(from, end)
	if _, err := g.check(ctx, 5, from, false); err == nil || !strings.Contains(err.Error(), "no Send of the round stored") {
		t.Errorf("check with a message no Send stored: %v; want it to fail", err)
	}
	if _, err := g.check(ctx, 5, from, true); err != nil {
		t.Errorf("check of a round with failed Sends tolerates a message it does not know: %v", err)
	}
}

// TestSeedGroups seeds a small recv groups database and checks what the
// workload relies on: the counts, a full page past every cursor, and the
// reference query answering what Recv does.
func TestSeedGroups(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "r.db")
	const readers = 3
	log := warnLogger(testWriter{t})
	rf, err := seedGroups(ctx, dsn, minMessages, readers, log)
	if err != nil {
		t.Fatal(err)
	}
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(gdb)
	db, _ := gdb.DB()
	query, err := recvGroupsSQL(gdb)
	if err != nil {
		t.Fatal(err)
	}
	perGroup := max(minMessages/groupSeedShare/recvGroupCount, minGroupMessages)
	var group, direct, members, seq int
	if err := db.QueryRow("SELECT COUNT(*) FROM chat_messages WHERE gid <> 0").Scan(&group); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM chat_messages WHERE gid = 0").Scan(&direct); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*), MIN(g.seq) FROM chat_group_members AS gm JOIN chat_groups AS g ON g.gid = gm.gid").Scan(&members, &seq); err != nil {
		t.Fatal(err)
	}
	wantMembers := recvGroupCount * (readers + max(groupSize-readers, groupOthersMin))
	if group != recvGroupCount*perGroup || direct != perGroup/directEvery*readers || members != wantMembers || seq != perGroup || group+direct != rf.messages {
		t.Fatalf("%d group and %d 1:1 messages, %d memberships, seq %d; want %d, %d, %d, %d", group, direct, members, seq,
			recvGroupCount*perGroup, perGroup/directEvery*readers, wantMembers, perGroup)
	}
	for seq := range 50 {
		u, last := rf.recvPick(seq%readers, seq)
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM ("+query+") AS q", recvArgs(u.UID, last)...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != recvPage+1 {
			t.Errorf("past %d for %d: %d rows, want %d", last, u.UID, n, recvPage+1)
		}
	}
	srv, err := startChat(ctx, dsn, "127.0.0.1:0", t.TempDir(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	load, err := newSDKLoad([]string{srv.addr}, rf.secret, rf.users[:readers], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer load.close()
	if err := sameAsRecv(ctx, db, query, load.clients, rf); err != nil {
		t.Fatal(err)
	}
}
