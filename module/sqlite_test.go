package module_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
)

// A host's own SQLite handle without WAL, synchronous=FULL, a busy
// timeout or foreign keys is warned about, since acknowledged messages,
// writes under contention and deletes depend on them; one set up as
// database.Open sets it is not.
func TestSQLiteSettingsWarned(t *testing.T) {
	const safeRest = "&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"defaults", "", []string{"journal_mode is not WAL", "foreign_keys is off"}},
		{"synchronous off", "?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)" + safeRest, []string{"synchronous is below FULL"}},
		{"normal, rollback journal", "?_pragma=synchronous(NORMAL)" + safeRest, []string{"journal_mode is not WAL", "synchronous is below FULL"}},
		{"no busy timeout", "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(0)&_pragma=foreign_keys(1)", []string{"busy_timeout is 0"}},
		{"no foreign keys", "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)", []string{"foreign_keys is off"}},
		{"wal and full", "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" + safeRest, nil},
		{"wal and extra", "?_pragma=journal_mode(WAL)&_pragma=synchronous(EXTRA)" + safeRest, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gdb, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "host.db")+tc.query), &gorm.Config{})
			if err != nil {
				t.Fatal(err)
			}
			pool, _ := gdb.DB()
			defer pool.Close()
			var logs bytes.Buffer
			m, err := module.New(module.Config{DB: gdb, UploadDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, w := range tc.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log %q lacks %q", logs.String(), w)
				}
			}
			if tc.want == nil && strings.Contains(logs.String(), "sqlite") {
				t.Errorf("warned about a safe handle: %q", logs.String())
			}
		})
	}
	// The test helpers' handles come from database.Open: never warned.
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{})
	if strings.Contains(s.Logs.String(), "sqlite") {
		t.Errorf("warned about database.Open's handle: %q", s.Logs.String())
	}
}
