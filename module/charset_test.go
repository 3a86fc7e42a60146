package module_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// charsetPayloads are Sends that break out of a string the driver escaped
// on a connection of a multibyte charset, one per charset: each ends in a
// character whose last byte, read in that charset, starts a two-byte
// character whose second byte may be a backslash. The driver's escape of
// the quote that follows then becomes that character's second half, and
// the quote ends the string: what follows runs as SQL (multiStatements
// lets it run a statement of its own).
var charsetPayloads = map[string]string{
	"gbk":  "中', 1, NULL, 1, 1); UPDATE chat_users SET name=0x70776e6564; COMMIT; -- ",
	"big5": "中', 1, NULL, 1, 1); UPDATE chat_users SET name=0x70776e6564; COMMIT; -- ",
	"sjis": "ボ', 1, NULL, 1, 1); UPDATE chat_users SET name=0x70776e6564; COMMIT; -- ",
}

// charsetKeys are client_msg_ids made as charsetPayloads are.
var charsetKeys = map[string]string{
	"gbk":  "中') OR 1=1; UPDATE chat_users SET name=0x70776e6564; -- ",
	"big5": "中') OR 1=1; UPDATE chat_users SET name=0x70776e6564; -- ",
	"sjis": "ボ') OR 1=1; UPDATE chat_users SET name=0x70776e6564; -- ",
}

// TestMultibyteCharsetSendIsText sends, on a module opened on a DSN whose
// charset is gbk, big5 or sjis, a text made to escape its quotes there,
// through each way a Send is written: no other row changes, and the text
// is stored once, as it was sent. A Send without the group commit is a
// server-side prepared statement there, which reads the text in the
// connection's charset: a text that charset cannot hold is refused
// rather than stored changed.
func TestMultibyteCharsetSendIsText(t *testing.T) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: connection charsets need MariaDB (.ci/run sets it)")
	}
	ways := []struct {
		name     string
		poolOnly bool // the host hands GORM a pool, without a DSN
		batch    int  // Config.SendBatchSize
		exact    bool // the Send must succeed
	}{
		{name: "writers' own pool", batch: 128, exact: true},
		{name: "writers on the host's pool", poolOnly: true, batch: 128, exact: true},
		{name: "no group commit", batch: 1},
	}
	for charset, payload := range charsetPayloads {
		for _, way := range ways {
			t.Run(charset+"/"+way.name, func(t *testing.T) {
				plain := chattest.OpenMySQL(t, base)
				db := chattest.WithCharset(t, plain, charset)
				if way.poolOnly {
					db = chattest.PoolOnly(t, db)
				}
				s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.SendBatchSize = way.batch }})
				a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
				s.Befriend(t, a, b)
				key := client.ClientMsgID(charsetKeys[charset])
				// To a stranger: the batch checks, refuses and runs again
				// a statement at a time, reading the client_msg_id back.
				_, err := s.SDKFor(t, a).Send(context.Background(), c.UID, payload, key)
				if way.exact {
					chattest.ExpectErr(t, err, 403, 1008)
				}
				_, err = s.SDKFor(t, a).Send(context.Background(), b.UID, payload, key)
				checkUntouched(t, plain, payload, charsetKeys[charset], err, way.exact)
			})
		}
	}
}

// checkUntouched reads, on plain's utf8mb4 connection, what the Send of
// payload with client_msg_id key stored, byte for byte: the users a, b
// and c as they were, and the payload with its key once if the Send
// succeeded (it must when exact), nothing if it failed.
func checkUntouched(t *testing.T, plain *chattest.DB, payload, key string, sendErr error, exact bool) {
	t.Helper()
	var names []string
	if err := plain.Gorm.Table("chat_users").Order("uid").Pluck("name", &names).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("user names %q after the Send, want [a b c]", names)
	}
	var bodies, keys []string
	if err := plain.Gorm.Table("chat_messages").Pluck("body", &bodies).Error; err != nil {
		t.Fatal(err)
	}
	if err := plain.Gorm.Table("chat_messages").Pluck("client_msg_id", &keys).Error; err != nil {
		t.Fatal(err)
	}
	switch {
	case sendErr != nil && exact:
		t.Fatalf("send: %v", sendErr)
	case sendErr != nil && len(bodies) != 0:
		t.Fatalf("the Send failed (%v) but stored %q", sendErr, bodies)
	case sendErr == nil && (len(bodies) != 1 || bodies[0] != payload || keys[0] != key):
		t.Fatalf("stored bodies %q with client_msg_ids %q, want exactly [%q] with [%q]", bodies, keys, payload, key)
	}
}

// TestSendErrorLogsNoBody sends, on a DSN whose charset is ascii, a text
// that charset cannot hold: MariaDB refuses it with an error that quotes
// it ("Incorrect string value: '…'"), and the module logs the error
// without the text, whether the Send shares a commit (the batch) or
// stores alone (SendBatchSize 1), and so does a route that is no Send.
func TestSendErrorLogsNoBody(t *testing.T) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: connection charsets need MariaDB (.ci/run sets it)")
	}
	// Short enough for MariaDB to quote it all: "'\xE4\xB8\xADZq9'".
	const body, quoted = "中Zq9", "Zq9"
	send := func(t *testing.T, s *chattest.Server, a, b chattest.User) {
		_, err := s.SDKFor(t, a).Send(context.Background(), b.UID, body)
		chattest.ExpectErr(t, err, 500, 1500)
	}
	for _, tc := range []struct {
		name      string
		batchSize int
		fail      func(t *testing.T, s *chattest.Server, a, b chattest.User)
	}{
		{"batched send", 0, send},
		{"send alone", 1, send},
		{"rename", 0, func(t *testing.T, s *chattest.Server, a, _ chattest.User) {
			r := s.Post(t, "/user/info/update", a.Creds(map[string]any{"name": body}))
			chattest.Expect(t, r, 500, 1500)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := chattest.NewServer(t, chattest.WithCharset(t, chattest.OpenMySQL(t, base), "ascii"), chattest.Options{
				Config: func(c *module.Config) { c.SendBatchSize = tc.batchSize },
			})
			a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
			s.Befriend(t, a, b)
			tc.fail(t, s, a, b)
			logs := s.Logs.String()
			if !strings.Contains(logs, "1366") {
				t.Fatalf("the log does not show the database's error:\n%s", logs)
			}
			if strings.Contains(logs, quoted) || strings.Contains(logs, `xE4`) {
				t.Fatalf("the log holds the message's text:\n%s", logs)
			}
		})
	}
}
