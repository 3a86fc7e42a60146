package database

import (
	"reflect"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
)

func TestWithInterpolation(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		interp bool // InterpolateParams of the result
		same   bool // the result is the input, unchanged
	}{
		{name: "no query", in: "u:p@tcp(h:3306)/db", interp: true},
		{name: "other params", in: "u:p@tcp(h:3306)/db?parseTime=true&charset=utf8mb4&loc=UTC", interp: true},
		{name: "explicit false", in: "u:p@tcp(h:3306)/db?interpolateParams=false", same: true},
		{name: "explicit false after others", in: "u:p@tcp(h:3306)/db?parseTime=true&interpolateParams=0", same: true},
		{name: "explicit true", in: "u:p@tcp(h:3306)/db?interpolateParams=true", interp: true, same: true},
		// A password may hold '?', '/', '&' and the key's name: only the
		// query after the database name counts.
		{name: "key in the password", in: "u:x?interpolateParams=false/&@tcp(h:3306)/db", interp: true},
		{name: "key in the password, chosen in the query", in: "u:x?interpolateParams=true/@tcp(h:3306)/db?interpolateParams=false", same: true},
		{name: "key in another param's value", in: "u:p@tcp(h:3306)/db?parseTime=true&time_zone=%27interpolateParams%27", interp: true},
		{name: "key without a value is ignored, as by the driver", in: "u:p@tcp(h:3306)/db?interpolateParams", interp: true},
		{name: "unsafe collation keeps the default", in: "u:p@tcp(h:3306)/db?collation=gbk_chinese_ci", same: true},
		// Escaping is unsafe in a multibyte charset (see clientcharset).
		{name: "unsafe charset keeps the default", in: "u:p@tcp(h:3306)/db?charset=gbk", same: true},
		{name: "an unsafe charset among others keeps the default", in: "u:p@tcp(h:3306)/db?charset=utf8mb4,sjis", same: true},
		{name: "the last charset key counts", in: "u:p@tcp(h:3306)/db?charset=big5&charset=utf8mb4", interp: true},
		{name: "latin1 is safe", in: "u:p@tcp(h:3306)/db?charset=latin1", interp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withInterpolation(tc.in)
			if err != nil {
				t.Fatalf("withInterpolation(%q): %v", tc.in, err)
			}
			if tc.same && got != tc.in {
				t.Fatalf("withInterpolation(%q) = %q, want it unchanged", tc.in, got)
			}
			cfg, err := gomysql.ParseDSN(got)
			if err != nil {
				t.Fatalf("result %q does not parse: %v", got, err)
			}
			if cfg.InterpolateParams != tc.interp {
				t.Errorf("withInterpolation(%q) = %q: InterpolateParams %v, want %v", tc.in, got, cfg.InterpolateParams, tc.interp)
			}
			// Everything else the input said survives the round trip.
			want, _ := gomysql.ParseDSN(tc.in)
			want.InterpolateParams = cfg.InterpolateParams
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("withInterpolation(%q) = %q changed more than interpolateParams:\n got %+v\nwant %+v", tc.in, got, cfg, want)
			}
		})
	}
}

func TestWithInterpolationRefusesBadDSN(t *testing.T) {
	for _, in := range []string{
		"u:secretpw@tcp(h:3306",                   // no slash before a database name
		"u:secretpw@tcp(h:3306/db",                // address not closed
		"u:secretpw@tcp(h:3306)/db?parseTime=yes", // not a bool
		"u:secretpw@tcp(h:3306)/db?loc=Nowhere/Land",
	} {
		got, err := withInterpolation(in)
		if err == nil {
			t.Errorf("withInterpolation(%q) = %q, want an error", in, got)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "invalid MySQL DSN: ") || strings.Contains(msg, "secretpw") {
			t.Errorf("withInterpolation(%q): error %q, want one starting \"invalid MySQL DSN: \" without the password", in, msg)
		}
	}
}

// A SQLite file is opened through walvfs's VFS unless its path names a
// VFS itself; an in-memory database has no WAL and keeps SQLite's.
func TestSQLiteDSNChoosesVFS(t *testing.T) {
	for _, tc := range []struct {
		path, want string
	}{
		{"/tmp/chat.db", "vfs=fiberchat-wal"},
		{"/tmp/chat.db?mode=rwc", "vfs=fiberchat-wal"},
		{"/tmp/chat.db?vfs=unix-excl", "vfs=unix-excl"},
		{":memory:", ""},
		{"file::memory:?cache=shared", ""},
	} {
		dsn := sqliteDSN(tc.path)
		if n := strings.Count(dsn, "vfs="); tc.want == "" && n != 0 || tc.want != "" && (n != 1 || !strings.Contains(dsn, tc.want)) {
			t.Errorf("sqliteDSN(%q) = %q, want one %q", tc.path, dsn, tc.want)
		}
	}
}
