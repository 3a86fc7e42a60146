package migrations_test

import (
	"context"
	"sort"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/migrations"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
	"gorm.io/gorm"
)

// TestModelsMatchSchema proves the GORM models and the migrated tables
// agree column for column, on both databases, so a model change without a
// migration (or the reverse) fails here rather than in production.
func TestModelsMatchSchema(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		m, err := module.New(module.Config{DB: db.Gorm, TablePrefix: "chatx_"})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		gdb := m.DB()
		for _, model := range models.All() {
			stmt := &gorm.Statement{DB: gdb}
			if err := stmt.Parse(model); err != nil {
				t.Fatal(err)
			}
			table := stmt.Schema.Table
			if table[:6] != "chatx_" {
				t.Errorf("table %s lacks the configured prefix", table)
			}
			cols, err := gdb.Migrator().ColumnTypes(model)
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			var inDB, inModel []string
			for _, c := range cols {
				inDB = append(inDB, c.Name())
			}
			for _, f := range stmt.Schema.Fields {
				if f.DBName != "" {
					inModel = append(inModel, f.DBName)
				}
			}
			sort.Strings(inDB)
			sort.Strings(inModel)
			if !equal(inDB, inModel) {
				t.Errorf("%s: table has %v, model has %v", table, inDB, inModel)
			}
		}
		// Applying again is a no-op, and the version is the newest.
		if err := m.Migrate(context.Background()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		pool, _ := gdb.DB()
		cur, latest, err := migrations.Version(context.Background(), pool, dialectOf(db), "chatx_")
		if err != nil || cur != latest || cur == 0 {
			t.Fatalf("version %d of %d (%v)", cur, latest, err)
		}
	})
}

func dialectOf(db *chattest.DB) migrations.Dialect {
	if db.Name == "mysql" {
		return migrations.MySQL
	}
	return migrations.SQLite
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
