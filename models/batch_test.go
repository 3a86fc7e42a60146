package models_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// TestMessageWriterBatch queues Sends before the writer runs, so they are
// all waiting when it starts and must share one commit, then checks each
// got the answer a transaction of its own would have given. On MariaDB it
// runs on a gbk connection too, where the batch carries its texts as hex
// literals instead of placeholders.
func TestMessageWriterBatch(t *testing.T) {
	chattest.EachDB(t, testMessageWriterBatch)
	t.Run("mysql-gbk", func(t *testing.T) {
		base := os.Getenv(chattest.MySQLEnv)
		if base == "" {
			t.Skip(chattest.MySQLEnv + " is not set: connection charsets need MariaDB (.ci/run sets it)")
		}
		testMessageWriterBatch(t, chattest.WithCharset(t, chattest.OpenMySQL(t, base), "gbk"))
	})
}

func testMessageWriterBatch(t *testing.T, db *chattest.DB) {
	s := chattest.NewServer(t, db, chattest.Options{})
	a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
	d, e := s.NewUser(t, "d"), s.NewUser(t, "e")
	s.Befriend(t, a, b)
	store := models.NewStore(s.Module.DB(), 0)
	ctx := context.Background()
	// d blocks c and e: messages are refused both ways.
	if _, _, err := store.BlockUsers(ctx, d.UID, []int64{c.UID, e.UID}, 1); err != nil {
		t.Fatal(err)
	}
	key := func(k string) *string { return &k }
	// An earlier message whose key the batch reuses.
	first := &models.Message{FromUID: a.UID, ToUID: b.UID, Body: "earlier", CreatedAt: 1, ClientMsgID: key("k0")}
	if _, err := store.CreateMessage(ctx, first, true); err != nil {
		t.Fatal(err)
	}

	msgs := []*models.Message{
		{FromUID: a.UID, ToUID: b.UID, Body: "m1", CreatedAt: 2},
		{FromUID: a.UID, ToUID: b.UID, Body: "retry of earlier", CreatedAt: 2, ClientMsgID: key("k0")},
		{FromUID: c.UID, ToUID: b.UID, Body: "m3", CreatedAt: 2, ClientMsgID: key("k1")},
		{FromUID: c.UID, ToUID: b.UID, Body: "m3 again", CreatedAt: 2, ClientMsgID: key("k1")},
		{FromUID: a.UID, ToUID: 99999999, Body: "nobody", CreatedAt: 2},
		{FromUID: b.UID, ToUID: a.UID, Body: "m6", CreatedAt: 2},
		{FromUID: c.UID, ToUID: a.UID, Body: "stranger", CreatedAt: 2},
		{FromUID: c.UID, ToUID: d.UID, Body: "to my blocker", CreatedAt: 2},
		{FromUID: d.UID, ToUID: e.UID, Body: "to whom I block", CreatedAt: 2},
		{FromUID: e.UID, ToUID: c.UID, Body: "between two d blocks", CreatedAt: 2},
	}
	// c and b are no contacts: c's messages to b are sent as by a host
	// allowing strangers, its message to a as contacts-only. So are the
	// messages around the blocks, which only a block stops.
	contactsOnly := []bool{true, true, false, false, true, true, true, false, false, false}
	w := models.NewMessageWriter(store, 64)
	// Queued in order: ids must follow arrival.
	replayed, errs, _ := sendQueued(w, msgs, contactsOnly, 20*time.Millisecond)

	if batches, written := w.Stats(); batches != 1 || written != int64(len(msgs)) {
		t.Fatalf("%d batches for %d sends, want one batch", batches, written)
	}
	got := func(i int) string { return fmt.Sprintf("id=%d replayed=%v err=%v", msgs[i].ID, replayed[i], errs[i]) }
	if errs[0] != nil || replayed[0] || msgs[0].ID <= first.ID {
		t.Fatalf("m1: %s", got(0))
	}
	if !replayed[1] || msgs[1].ID != first.ID || msgs[1].CreatedAt != 1 {
		t.Fatalf("retry of an earlier key: %s, want id %d", got(1), first.ID)
	}
	if replayed[2] || !replayed[3] || msgs[3].ID != msgs[2].ID {
		t.Fatalf("repeat within the batch: %s / %s", got(2), got(3))
	}
	if !errors.Is(errs[4], models.ErrNotFound) {
		t.Fatalf("unknown recipient: %s", got(4))
	}
	if !errors.Is(errs[6], models.ErrNotContact) {
		t.Fatalf("stranger, contacts only: %s", got(6))
	}
	if !errors.Is(errs[7], models.ErrBlocked) || !errors.Is(errs[8], models.ErrBlocked) {
		t.Fatalf("blocked pairs: %s / %s", got(7), got(8))
	}
	if errs[9] != nil || msgs[9].ID <= msgs[5].ID {
		t.Fatalf("pair without a block of its own: %s", got(9))
	}
	if !(msgs[0].ID < msgs[2].ID && msgs[2].ID < msgs[5].ID) {
		t.Fatalf("ids out of arrival order: %d %d %d", msgs[0].ID, msgs[2].ID, msgs[5].ID)
	}
	for _, i := range []int{0, 2, 5} {
		var row models.Message
		if err := s.Module.DB().First(&row, msgs[i].ID).Error; err != nil || row.Body != msgs[i].Body {
			t.Fatalf("row %d: %q %v, want %q", msgs[i].ID, row.Body, err, msgs[i].Body)
		}
	}
	if n := s.Count(t, "messages", ""); n != 5 {
		t.Fatalf("%d rows, want 5 (earlier, m1, m3, m6, e to c)", n)
	}
	// After Stop, writes still work, one transaction each.
	late := &models.Message{FromUID: a.UID, ToUID: b.UID, Body: "late", CreatedAt: 3}
	if _, err := w.CreateMessage(ctx, late, true); err != nil || late.ID == 0 {
		t.Fatalf("write after Stop: %v", err)
	}
}

// TestMessageWriterBatchColumns stores a batch of plain messages, whose
// INSERT leaves enc, kind, reply_to and file_id to their defaults, and one
// where a reply, an encrypted message and a reaction share the batch with
// plain ones: each row must keep its own values, and the plain ones the
// defaults.
func TestMessageWriterBatchColumns(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		store := models.NewStore(s.Module.DB(), 0)
		plain := []*models.Message{
			{FromUID: a.UID, ToUID: b.UID, Body: "p1", CreatedAt: 1},
			{FromUID: b.UID, ToUID: a.UID, Body: "p2", CreatedAt: 1},
		}
		if _, errs, _ := sendQueued(models.NewMessageWriter(store, 64), plain, nil, 0); errs[0] != nil || errs[1] != nil {
			t.Fatalf("plain batch: %v", errs)
		}
		mixed := []*models.Message{
			{FromUID: a.UID, ToUID: b.UID, Body: "p3", CreatedAt: 2},
			{FromUID: b.UID, ToUID: a.UID, Body: "a reply", CreatedAt: 2, ReplyTo: plain[0].ID},
			{FromUID: a.UID, ToUID: b.UID, Body: "c2VjcmV0", CreatedAt: 2, Enc: true},
			{FromUID: b.UID, ToUID: a.UID, Body: "+1", CreatedAt: 2, Kind: models.KindReaction, ReplyTo: plain[0].ID},
		}
		w := models.NewMessageWriter(store, 64)
		if _, errs, _ := sendQueued(w, mixed, nil, 0); errs[0] != nil || errs[1] != nil || errs[2] != nil || errs[3] != nil {
			t.Fatalf("mixed batch: %v", errs)
		}
		if batches, _ := w.Stats(); batches != 1 {
			t.Fatalf("%d batches, want the mixed messages in one", batches)
		}
		for _, m := range append(plain, mixed...) {
			var row models.Message
			if err := s.Module.DB().First(&row, m.ID).Error; err != nil {
				t.Fatal(err)
			}
			if row.Body != m.Body || row.Enc != m.Enc || row.Kind != m.Kind || row.ReplyTo != m.ReplyTo || row.FileID != 0 {
				t.Fatalf("row %d: body %q enc %v kind %d reply_to %d file_id %d, want %q %v %d %d 0",
					m.ID, row.Body, row.Enc, row.Kind, row.ReplyTo, row.FileID, m.Body, m.Enc, m.Kind, m.ReplyTo)
			}
		}
	})
}

// TestMessageWriterBigBatch stores one batch of 1 000 messages, the
// largest SendBatchSize allows, to 1 000 recipients: as many pairs, which
// SQLite cannot take as a UNION of 1 000 terms (its limit is 500).
func TestMessageWriterBigBatch(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		sender := s.NewUser(t, "sender")
		const n = 1000
		first := sender.UID + 1000
		rows := make([]string, n)
		for i := range rows {
			rows[i] = fmt.Sprintf("(%d, 'r%d', 'x', 1, 1)", first+int64(i), i)
		}
		if err := s.Module.DB().Exec("INSERT INTO chat_users (uid, name, passwd_hash, created_at, updated_at) VALUES " + strings.Join(rows, ", ")).Error; err != nil {
			t.Fatal(err)
		}
		store := models.NewStore(s.Module.DB(), 0)
		w := models.NewMessageWriter(store, n)
		msgs := make([]*models.Message, n)
		for i := range msgs {
			msgs[i] = &models.Message{FromUID: sender.UID, ToUID: first + int64(i), Body: fmt.Sprint("to ", i), CreatedAt: 1}
		}
		_, errs, _ := sendQueued(w, msgs, nil, 0)
		if batches, written := w.Stats(); batches != 1 || written != n {
			t.Fatalf("%d batches for %d sends, want one", batches, written)
		}
		for i, m := range msgs {
			var row models.Message
			if errs[i] != nil || s.Module.DB().First(&row, m.ID).Error != nil || row.Body != m.Body {
				t.Fatalf("message %d: id %d %v, row %q", i, m.ID, errs[i], row.Body)
			}
		}
	})
}

// sendQueued hands msgs to w before it runs (gap apart, so that they queue
// in order, when gap > 0), then runs one writer until every message is
// answered, so that they share its first batch. It returns each one's
// outcome, and whether the writer had a pool of its own while it ran. A
// nil contactsOnly sends every message as to strangers allowed.
func sendQueued(w *models.MessageWriter, msgs []*models.Message, contactsOnly []bool, gap time.Duration) (replayed []bool, errs []error, own bool) {
	replayed, errs = make([]bool, len(msgs)), make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replayed[i], errs[i] = w.CreateMessage(context.Background(), m, contactsOnly != nil && contactsOnly[i])
		}()
		time.Sleep(gap)
	}
	if gap == 0 {
		// Long enough for every sender to be waiting on the writer.
		time.Sleep(100*time.Millisecond + time.Duration(len(msgs))*200*time.Microsecond)
	}
	w.Start(1)
	own = w.OwnPool()
	wg.Wait()
	w.Stop()
	return replayed, errs, own
}

// TestMessageWriterWaitBound hands a message to writers that never take
// it: the Send gives up at its context's deadline, or at the store's
// query timeout when its context has none, as unavailable.
func TestMessageWriterWaitBound(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{})
	a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
	w := models.NewMessageWriter(models.NewStore(s.Module.DB(), 200*time.Millisecond), 8)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for name, ctx := range map[string]context.Context{"deadline": ctx, "none": context.Background()} {
		m := &models.Message{FromUID: a.UID, ToUID: b.UID, Body: name, CreatedAt: 1}
		if _, err := w.CreateMessage(ctx, m, false); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want DeadlineExceeded", name, err)
		}
	}
	if n := s.Count(t, "messages", "1 = 1"); n != 0 {
		t.Errorf("%d messages stored by writers that never ran", n)
	}
}

// TestMessageWriterKeepsTexts stores, in one batch, texts that a
// statement's encoding of them could change (quotes, backslashes, control
// characters, characters outside the BMP, a line separator) and checks
// every row holds them byte for byte, keys included, with its pair, and
// the conversation's counters: once with keys of the client's, once
// without.
func TestMessageWriterKeepsTexts(t *testing.T) {
	for _, keyed := range []bool{true, false} {
		t.Run(fmt.Sprint("keyed=", keyed), func(t *testing.T) { testMessageWriterKeepsTexts(t, keyed) })
	}
}

func testMessageWriterKeepsTexts(t *testing.T, keyed bool) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		store := models.NewStore(s.Module.DB(), 0)
		w := models.NewMessageWriter(store, 64)
		texts := []string{`say "hi"`, `C:\dir\`, "tab\tnew\nline\rcr\x01\x1f", "emoji 😀 and 漢字", "sep\u2028\u2029", `\u0041 stays`, "'; DROP TABLE x; --", `[1,"a"]`}
		msgs := make([]*models.Message, len(texts))
		for i, text := range texts {
			msgs[i] = &models.Message{FromUID: a.UID, ToUID: b.UID, Body: text, CreatedAt: int64(i + 1)}
			if keyed {
				key := "key " + text
				msgs[i].ClientMsgID = &key
			}
		}
		_, errs, _ := sendQueued(w, msgs, nil, 0)
		var newest int64
		for i, m := range msgs {
			newest = max(newest, m.ID)
			var row models.Message
			if errs[i] != nil || s.Module.DB().First(&row, m.ID).Error != nil {
				t.Fatalf("message %d: id %d %v", i, m.ID, errs[i])
			}
			// Without a key of the client's, MySQL's rows hold one of the
			// server's (a control character first); SQLite's hold none.
			keyOK := row.ClientMsgID == nil || strings.HasPrefix(*row.ClientMsgID, "\x01")
			if keyed {
				keyOK = row.ClientMsgID != nil && *row.ClientMsgID == "key "+texts[i]
			}
			if row.Body != texts[i] || !keyOK || row.CreatedAt != int64(i+1) || row.FromUID != a.UID || row.ToUID != b.UID ||
				row.PairLo != min(a.UID, b.UID) || row.PairHi != max(a.UID, b.UID) {
				t.Fatalf("row %d: body %q key %v created %d pair %d-%d, want %q", m.ID, row.Body, row.ClientMsgID, row.CreatedAt, row.PairLo, row.PairHi, texts[i])
			}
		}
		var unread, last int64
		if err := s.Module.DB().Raw("SELECT unread, last_id FROM chat_conversations WHERE uid = ? AND peer_uid = ?", b.UID, a.UID).Row().Scan(&unread, &last); err != nil {
			t.Fatal(err)
		}
		if unread != int64(len(texts)) || last != newest {
			t.Fatalf("conversation: unread %d last %d, want %d and %d", unread, last, len(texts), newest)
		}
	})
}
