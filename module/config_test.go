package module

import (
	"reflect"
	"testing"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
)

// TestConfigDefault checks that configDefault fills every zero field that
// ConfigDefault gives a value, keeps a field the caller set, and refuses
// what validate refuses.
func TestConfigDefault(t *testing.T) {
	db, err := gorm.Open(sqlite.Open("file::memory:"), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := configDefault(); err == nil {
		t.Error("configDefault(): no error, want DB is required")
	}
	if _, err := configDefault(Config{}); err == nil {
		t.Error("configDefault(Config{}): no error, want DB is required")
	}
	got, err := configDefault(Config{DB: db, MaxSessions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxSessions != 3 {
		t.Errorf("MaxSessions %d, want the caller's 3", got.MaxSessions)
	}
	if got.Logger == nil || got.Now == nil {
		t.Error("Logger or Now left nil")
	}
	def, filled := reflect.ValueOf(ConfigDefault), reflect.ValueOf(got)
	for i := range def.NumField() {
		name := def.Type().Field(i).Name
		if name == "MaxSessions" || def.Field(i).Kind() == reflect.Func || def.Field(i).IsZero() {
			continue
		}
		if !reflect.DeepEqual(filled.Field(i).Interface(), def.Field(i).Interface()) {
			t.Errorf("%s = %v, want ConfigDefault's %v", name, filled.Field(i), def.Field(i))
		}
	}
	for _, bad := range []Config{
		{DB: db, TablePrefix: "chat-"},
		{DB: db, SignatureSkew: 13 * time.Hour},
		{DB: db, BcryptCost: 3},
		{DB: db, AvatarMaxBytes: -1},
		{DB: db, TokenCacheSize: -1},
		{DB: db, MaxWait: time.Minute},
		{DB: db, StreamPingInterval: -time.Second},
	} {
		if _, err := configDefault(bad); err == nil {
			t.Errorf("configDefault(%+v): no error", bad)
		}
	}
}
