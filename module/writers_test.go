package module

import (
	"testing"

	"github.com/fiberchat/fiberchat/migrations"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
)

// TestSendWritersDefault checks SendWriters' default rule: one writer on
// SQLite and on a MySQL/MariaDB server on this host, two on one elsewhere
// or unknown, and a value given always wins.
func TestSendWritersDefault(t *testing.T) {
	onDSN := func(dsn string) *gorm.DB {
		return &gorm.DB{Config: &gorm.Config{Dialector: mysql.New(mysql.Config{DSN: dsn})}}
	}
	cfg := gomysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", "db.internal:3306"
	for _, c := range []struct {
		name    string
		dialect migrations.Dialect
		db      *gorm.DB
		n, want int
	}{
		{"sqlite", migrations.SQLite, &gorm.DB{Config: &gorm.Config{}}, 0, 1},
		{"loopback IPv4", migrations.MySQL, onDSN("u:p@tcp(127.0.0.1:3306)/chat"), 0, 1},
		{"loopback IPv6", migrations.MySQL, onDSN("u:p@tcp([::1]:3306)/chat"), 0, 1},
		{"localhost, no port", migrations.MySQL, onDSN("u:p@tcp(localhost)/chat"), 0, 1},
		{"the driver's default address", migrations.MySQL, onDSN("u:p@/chat"), 0, 1},
		{"unix socket", migrations.MySQL, onDSN("u:p@unix(/run/mysqld/mysqld.sock)/chat"), 0, 1},
		{"failover list on this host", migrations.MySQL, onDSN("u:p@tcp(127.0.0.1:3306,127.0.0.1:3307)/chat"), 0, 1},
		{"another host", migrations.MySQL, onDSN("u:p@tcp(10.0.0.5:3306)/chat"), 0, 2},
		{"a name", migrations.MySQL, onDSN("u:p@tcp(db.internal:3306)/chat"), 0, 2},
		{"failover list with another host", migrations.MySQL, onDSN("u:p@tcp(127.0.0.1:3306,10.0.0.5:3306)/chat"), 0, 2},
		{"parsed config elsewhere", migrations.MySQL, &gorm.DB{Config: &gorm.Config{Dialector: mysql.New(mysql.Config{DSNConfig: cfg})}}, 0, 2},
		{"an open pool only", migrations.MySQL, &gorm.DB{Config: &gorm.Config{Dialector: mysql.New(mysql.Config{})}}, 0, 2},
		{"given on this host", migrations.MySQL, onDSN("u:p@tcp(127.0.0.1:3306)/chat"), 3, 3},
		{"given elsewhere", migrations.MySQL, onDSN("u:p@tcp(10.0.0.5:3306)/chat"), 1, 1},
	} {
		if got := sendWriters(c.n, c.dialect, c.db); got != c.want {
			t.Errorf("%s: sendWriters = %d, want %d", c.name, got, c.want)
		}
	}
}
