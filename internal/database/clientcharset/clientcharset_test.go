package clientcharset

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"os"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
)

func TestSafe(t *testing.T) {
	for name, want := range map[string]bool{
		"utf8mb4": true, "UTF8MB4": true, "utf8mb3": true, "utf8": true, "latin1": true, "ascii": true, "binary": true,
		"gbk": false, "big5": false, "sjis": false, "cp932": false, "gb18030": false, "gb2312": false, "": false,
	} {
		if got := Safe(name); got != want {
			t.Errorf("Safe(%q) = %v, want %v", name, got, want)
		}
	}
}

// breakout compares a text with another in a statement the driver
// interpolates: escaped safely, the text is a string and the comparison
// false; escaped in a charset that swallows the escape, its quote ends
// the string and "OR 1=1" makes it true.
const breakout = "SELECT COUNT(*) FROM (SELECT 1 AS x) t WHERE ? = 'nothing'"

// TestGuardSendsArgumentsToTheServer runs breakout on MariaDB with
// interpolateParams on and a multibyte charset: through the driver alone
// the text becomes SQL, through Guard it stays a text; and a utf8mb4
// connection is handed out as the driver made it.
func TestGuardSendsArgumentsToTheServer(t *testing.T) {
	base := os.Getenv("FIBERCHAT_TEST_MYSQL_DSN")
	if base == "" {
		t.Skip("FIBERCHAT_TEST_MYSQL_DSN is not set: connection charsets need MariaDB (.ci/run sets it)")
	}
	for charset, text := range map[string]string{
		"gbk":  "中' OR 1=1 -- ",
		"big5": "中' OR 1=1 -- ",
		"sjis": "ボ' OR 1=1 -- ",
	} {
		t.Run(charset, func(t *testing.T) {
			connector := connectorFor(t, base, charset)
			if n := count(t, connector, text); n != 1 {
				t.Fatalf("without Guard, the text stayed a text (%d rows): the test no longer shows the driver's flaw", n)
			}
			if n := count(t, Guard(connector), text); n != 0 {
				t.Fatalf("through Guard, the text became SQL (%d rows, want 0)", n)
			}
		})
	}
	t.Run("utf8mb4", func(t *testing.T) {
		pool := sql.OpenDB(Guard(connectorFor(t, base, "utf8mb4")))
		defer pool.Close()
		conn, err := pool.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.Raw(func(dc any) error {
			if _, wrapped := dc.(*unescaped); wrapped {
				t.Error("a utf8mb4 connection lost its client-side interpolation")
			}
			return nil
		})
	})
}

// connectorFor is the driver's connector on base with charset and
// interpolateParams on.
func connectorFor(t *testing.T, base, charset string) driver.Connector {
	t.Helper()
	cfg, err := gomysql.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Apply(gomysql.Charset(charset, "")); err != nil {
		t.Fatal(err)
	}
	cfg.InterpolateParams = true
	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return connector
}

// count runs breakout with text on a pool of connector's.
func count(t *testing.T, connector driver.Connector, text string) int {
	t.Helper()
	pool := sql.OpenDB(connector)
	defer pool.Close()
	var n int
	if err := pool.QueryRow(breakout, text).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
