package module_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// deviceSDK is an SDK for u as device id, its key published.
func deviceSDK(t *testing.T, l *chattest.Live, u chattest.User, id string) *client.Client {
	t.Helper()
	d, err := client.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	c := l.SDK(t, client.WithDevice(d))
	c.SetSession(u.Session())
	if err := c.PublishKey(context.Background()); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
	return c
}

// TestEncryptedRoundTrip: a message alice's phone encrypts is read by
// bob through Recv, History and the stream, and by alice's phone and
// laptop in History; carol, the database and the logs never see its
// text; a ct tampered with in the database is shown as undecryptable,
// never as text.
func TestEncryptedRoundTrip(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		l := chattest.NewLive(t, db, chattest.Options{})
		s := l.Server
		a, b, c := l.NewUser(t, "alice"), l.NewUser(t, "bob"), l.NewUser(t, "carol")
		s.Befriend(t, a, b)
		s.Befriend(t, c, b)
		phone, laptop := deviceSDK(t, l, a, "phone"), deviceSDK(t, l, a, "laptop")
		bob, carol := deviceSDK(t, l, b, "b1"), deviceSDK(t, l, c, "c1")
		st, err := bob.Stream(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()

		const secret = "the eagle lands at 0400 — ünïcödé"
		sent, err := phone.SendEncrypted(ctx, b.UID, secret)
		if err != nil {
			t.Fatalf("SendEncrypted: %v", err)
		}
		ev, err := st.Next()
		if m, ok := ev.(client.Message); err != nil || !ok || m.ID != sent.ID || m.Message != secret || !m.Encrypted || m.DecryptErr != nil {
			t.Fatalf("stream: %+v, %v", ev, err)
		}
		zero := int64(0)
		got, err := bob.Recv(ctx, client.RecvRequest{LastID: &zero})
		if err != nil || len(got.Messages) != 1 || got.Messages[0].Message != secret || !got.Messages[0].Encrypted {
			t.Fatalf("recv: %+v, %v", got, err)
		}
		for name, sdk := range map[string]*client.Client{"bob": bob, "phone": phone, "laptop": laptop} {
			with := a.UID
			if sdk != bob {
				with = b.UID
			}
			page, err := sdk.History(ctx, client.HistoryRequest{With: with})
			if err != nil || len(page.Messages) != 1 || page.Messages[0].Message.Message != secret {
				t.Fatalf("%s history: %+v, %v", name, page, err)
			}
		}
		// carol gets nothing of it, and a message she is not in cannot
		// be read with her device: the envelope has no key for it.
		if got, err := carol.Recv(ctx, client.RecvRequest{LastID: &zero}); err != nil || len(got.Messages) != 0 {
			t.Fatalf("carol recv: %+v, %v", got, err)
		}
		if safetyA, safetyB := mustSafety(t, phone, b.UID), mustSafety(t, bob, a.UID); safetyA != safetyB {
			t.Fatalf("safety numbers differ: %s, %s", safetyA, safetyB)
		}

		// The search finds what is there: a plain message's text.
		if _, err := bob.Send(ctx, a.UID, "plain canary"); err != nil {
			t.Fatal(err)
		}
		if where := searchEverywhere(t, s, "plain canary"); len(where) == 0 {
			t.Fatal("the search did not find a plain message")
		}
		if where := searchEverywhere(t, s, secret); len(where) > 0 {
			t.Fatalf("plaintext of an encrypted message in %v", where)
		}

		// The server (or its database) flips a byte of ct: bob is told
		// the message cannot be decrypted, and gets no text.
		var body string
		s.Module.DB().Table("chat_messages").Where("id = ?", sent.ID).Pluck("body", &body)
		i := strings.Index(body, `"ct":"`) + len(`"ct":"`)
		flip := byte('A')
		if body[i] == 'A' {
			flip = 'B'
		}
		tampered := body[:i] + string(flip) + body[i+1:]
		if err := s.Module.DB().Table("chat_messages").Where("id = ?", sent.ID).Update("body", tampered).Error; err != nil {
			t.Fatal(err)
		}
		got, err = bob.Recv(ctx, client.RecvRequest{LastID: &zero, Limit: 1})
		if err != nil || len(got.Messages) != 1 || got.Messages[0].Message != "" || !errors.Is(got.Messages[0].DecryptErr, client.ErrUndecryptable) {
			t.Fatalf("tampered recv: %+v, %v", got, err)
		}
	})
}

func mustSafety(t *testing.T, c *client.Client, peer int64) string {
	t.Helper()
	n, err := c.SafetyNumber(context.Background(), peer)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// searchEverywhere returns where text is, as table.column, in any
// column of any table (each read as text), and "logs" if the module
// logged it.
func searchEverywhere(t *testing.T, s *chattest.Server, text string) []string {
	t.Helper()
	var where []string
	gdb := s.Module.DB()
	tables, err := gdb.Migrator().GetTables()
	if err != nil || len(tables) == 0 {
		t.Fatalf("tables: %v %v", tables, err)
	}
	for _, table := range tables {
		rows, err := gdb.Raw("SELECT * FROM " + table).Rows()
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]sql.RawBytes, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			for i, v := range vals {
				if strings.Contains(string(v), text) {
					where = append(where, table+"."+cols[i])
				}
			}
		}
		rows.Close()
	}
	if strings.Contains(s.Logs.String(), text) {
		where = append(where, "logs")
	}
	return where
}

// TestEncryptedAfterKeyChangeWithoutStream: alice's phone comes back with
// a new key (reinstalled) and sends; bob, who remembered the old key and
// has no stream to hear of the change, reads the keys again (no more
// than every few seconds) and decrypts; an older message that no key of
// now opens stays undecryptable.
func TestEncryptedAfterKeyChangeWithoutStream(t *testing.T) {
	ctx := context.Background()
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{})
	a, b := l.NewUser(t, "alice"), l.NewUser(t, "bob")
	l.Befriend(t, a, b)
	phone, bob := deviceSDK(t, l, a, "phone"), deviceSDK(t, l, b, "b1")
	first, err := phone.SendEncrypted(ctx, b.UID, "before")
	if err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	if got, err := bob.Recv(ctx, client.RecvRequest{LastID: &zero}); err != nil || len(got.Messages) != 1 || got.Messages[0].Message != "before" {
		t.Fatalf("recv before: %+v, %v", got, err)
	}
	l.Clock.Advance(time.Minute)
	phone = deviceSDK(t, l, a, "phone") // a new key pair, same device id
	if _, err := phone.SendEncrypted(ctx, b.UID, "after"); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Recv(ctx, client.RecvRequest{LastID: &first.ID})
	if err != nil || len(got.Messages) != 1 || got.Messages[0].Message != "after" || got.Messages[0].DecryptErr != nil {
		t.Fatalf("recv after the key changed: %+v, %v", got, err)
	}
	got, err = bob.Recv(ctx, client.RecvRequest{LastID: &zero})
	if err != nil || len(got.Messages) != 2 || !errors.Is(got.Messages[0].DecryptErr, client.ErrUndecryptable) || got.Messages[1].Message != "after" {
		t.Fatalf("recv of both: %+v, %v", got, err)
	}
}
