package module_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	gomysql "github.com/go-sql-driver/mysql"
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
				db := openWithCharset(t, plain, charset)
				if way.poolOnly {
					db = chattest.PoolOnly(t, db)
				}
				s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.SendBatchSize = way.batch }})
				a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
				s.Befriend(t, a, b)
				_, err := s.SDKFor(t, a).Send(context.Background(), b.UID, payload)
				checkUntouched(t, plain, payload, err, way.exact)
			})
		}
	}
}

// openWithCharset opens plain's database again with charset in its DSN.
func openWithCharset(t *testing.T, plain *chattest.DB, charset string) *chattest.DB {
	t.Helper()
	cfg, err := gomysql.ParseDSN(strings.TrimPrefix(plain.DSN, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Params = map[string]string{"charset": charset}
	dsn := "mysql:" + cfg.FormatDSN()
	g, err := database.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(g) })
	return &chattest.DB{Name: "mysql", DSN: dsn, Gorm: g}
}

// checkUntouched reads, on plain's utf8mb4 connection, what the Send of
// payload stored, byte for byte: the users a and b as they were, and the
// payload once if the Send succeeded (it must when exact), nothing if it
// failed.
func checkUntouched(t *testing.T, plain *chattest.DB, payload string, sendErr error, exact bool) {
	t.Helper()
	var names []string
	if err := plain.Gorm.Table("chat_users").Order("uid").Pluck("name", &names).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("user names %q after the Send, want [a b]", names)
	}
	var bodies []string
	if err := plain.Gorm.Table("chat_messages").Pluck("body", &bodies).Error; err != nil {
		t.Fatal(err)
	}
	switch {
	case sendErr != nil && exact:
		t.Fatalf("send: %v", sendErr)
	case sendErr != nil && len(bodies) != 0:
		t.Fatalf("the Send failed (%v) but stored %q", sendErr, bodies)
	case sendErr == nil && (len(bodies) != 1 || bodies[0] != payload):
		t.Fatalf("stored bodies %q, want exactly [%q]", bodies, payload)
	}
}

// TestSendErrorLogsNoBody sends, on a DSN whose charset is ascii, a text
// that charset cannot hold: MariaDB refuses it with an error that quotes
// it ("Incorrect string value: '…'"), and the module logs the error
// without the text.
func TestSendErrorLogsNoBody(t *testing.T) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: connection charsets need MariaDB (.ci/run sets it)")
	}
	// Short enough for MariaDB to quote it all: "'\xE4\xB8\xADZq9'".
	const body, quoted = "中Zq9", "Zq9"
	s := chattest.NewServer(t, openWithCharset(t, chattest.OpenMySQL(t, base), "ascii"), chattest.Options{})
	a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
	s.Befriend(t, a, b)
	_, err := s.SDKFor(t, a).Send(context.Background(), b.UID, body)
	chattest.ExpectErr(t, err, 500, 1500)
	logs := s.Logs.String()
	if !strings.Contains(logs, "1366") {
		t.Fatalf("the log does not show the database's error:\n%s", logs)
	}
	if strings.Contains(logs, quoted) || strings.Contains(logs, `xE4`) {
		t.Fatalf("the log holds the message's text:\n%s", logs)
	}
}
