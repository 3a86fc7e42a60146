package failover

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want []string
	}{
		{"u:p@tcp(a:1)/db?x=1", []string{"u:p@tcp(a:1)/db?x=1"}},
		{"u:p@tcp(a:1,b:2, c:3)/db?x=1", []string{"u:p@tcp(a:1)/db?x=1", "u:p@tcp(b:2)/db?x=1", "u:p@tcp(c:3)/db?x=1"}},
		{"u:p@unix(/run/s.sock)/db", []string{"u:p@unix(/run/s.sock)/db"}},
		{"u:p@/db", []string{"u:p@/db"}},
	} {
		if got := Split(tc.dsn); !slices.Equal(got, tc.want) {
			t.Errorf("Split(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
}

// TestConnectPassesOverADeadServer lists a port nothing listens on before
// the test's MariaDB: every connection goes to the MariaDB.
func TestConnectPassesOverADeadServer(t *testing.T) {
	base := os.Getenv("FIBERCHAT_TEST_MYSQL_DSN")
	if base == "" {
		t.Skip("FIBERCHAT_TEST_MYSQL_DSN is not set (.ci/run sets it)")
	}
	live, err := gomysql.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	dead := live.Clone()
	dead.Addr = "127.0.0.1:1"
	c, err := New([]*gomysql.Config{dead, live}, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var one int
	if err := db.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d, %v", one, err)
	}

	// With none alive, the error names each server, the last one's first.
	c, _ = New([]*gomysql.Config{dead, dead}, nil)
	none := sql.OpenDB(c)
	defer none.Close()
	err = none.PingContext(context.Background())
	if err == nil || strings.Count(err.Error(), "connection refused") != 2 {
		t.Fatalf("ping with no server alive: %v", err)
	}
}

// TestConfigs checks which servers Configs reads from a DSN's text and
// its parsed config: a list in the text wins, then the parsed config,
// then the text.
func TestConfigs(t *testing.T) {
	parsed := gomysql.NewConfig()
	parsed.Net, parsed.Addr = "tcp", "10.0.0.9:3306"
	addrs := func(cfgs []*gomysql.Config) []string {
		var out []string
		for _, c := range cfgs {
			out = append(out, c.Addr)
		}
		return out
	}
	for _, c := range []struct {
		name string
		dsn  string
		cfg  *gomysql.Config
		want []string
	}{
		{"list beats config", "u:p@tcp(10.0.0.1:3306,10.0.0.2:3306)/chat", parsed, []string{"10.0.0.1:3306", "10.0.0.2:3306"}},
		{"config beats one address", "u:p@tcp(10.0.0.1:3306)/chat", parsed, []string{"10.0.0.9:3306"}},
		{"one address", "u:p@tcp(10.0.0.1:3306)/chat", nil, []string{"10.0.0.1:3306"}},
		{"neither", "", nil, nil},
	} {
		cfgs, err := Configs(c.dsn, c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := addrs(cfgs); !slices.Equal(got, c.want) {
			t.Errorf("%s: servers %v, want %v", c.name, got, c.want)
		}
	}
	if cfgs, _ := Configs("", parsed); cfgs[0] == parsed {
		t.Error("Configs returned the parsed config itself, not a copy")
	}
	if _, err := Configs("u:p@tcp(10.0.0.1:3306,10.0.0.2:3306)/chat?badparam=%zz", nil); err == nil {
		t.Error("a malformed DSN in a list parsed")
	}
}
