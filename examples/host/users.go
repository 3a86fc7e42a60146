package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fiberchat/fiberchat/models"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// User is the host site's own account, in its own users table. fiberchat
// never reads or writes it: the module's tables all carry the chat_ prefix.
type User struct {
	ID           int64  `gorm:"primaryKey"`
	Email        string `gorm:"size:255;not null;uniqueIndex"`
	PasswordHash string `gorm:"size:100;not null"`
	DisplayName  string `gorm:"size:64;not null"`
	// Level is the account's membership tier on the host site, copied
	// into the chat user so that chat-side code can read it.
	Level int `gorm:"not null;default:0"`
}

// TableName names the host's table explicitly: it is the host's schema,
// whatever GORM's naming strategy says.
func (User) TableName() string { return "users" }

// ChatUser is the module's chat user extended with the host's own
// columns. It embeds models.User so the module's columns read as usual,
// and names the module's table itself (the module's models carry no table
// names; the prefix lives in the module's own *gorm.DB, not in the host's).
//
// The host reads and writes it with its own *gorm.DB and ordinary GORM.
// It writes only its own columns (email, level) and leaves the module's to
// the module, just as the module writes only its own.
type ChatUser struct {
	models.User
	Email string `gorm:"column:email;size:255;not null;default:''"`
	Level int    `gorm:"column:level;not null;default:0"`
}

// chatTablePrefix must equal module.Config.TablePrefix (the default here);
// prepareChat checks it against chat.TableName("users") at start.
const chatTablePrefix = "chat_"

// TableName is the module's users table.
func (ChatUser) TableName() string { return chatTablePrefix + "users" }

// migrateHost creates the host's own tables. AutoMigrate is fine here:
// these tables belong to the host alone.
func migrateHost(ctx context.Context, gdb *gorm.DB) error {
	if err := gdb.WithContext(ctx).AutoMigrate(&User{}, &AuditEntry{}); err != nil {
		return fmt.Errorf("migrate host tables: %w", err)
	}
	return nil
}

// migrateChatUserColumns adds the host's columns to the module's users
// table; run it after the module's Migrate, which creates the table. Each
// column is added only when missing, so it is safe on every start.
//
// It never calls AutoMigrate on ChatUser: AutoMigrate would also "fix" the
// module's columns to match the struct's tags (on SQLite by rebuilding the
// whole table), and those columns belong to the module's migrations. The
// defaults let rows the module creates (it knows nothing of these columns)
// be inserted as they are.
func migrateChatUserColumns(ctx context.Context, gdb *gorm.DB) error {
	db := gdb.WithContext(ctx)
	columns := []struct{ name, ddl string }{
		{"email", "email VARCHAR(255) NOT NULL DEFAULT ''"},
		{"level", "level INT NOT NULL DEFAULT 0"},
	}
	for _, col := range columns {
		if db.Migrator().HasColumn(&ChatUser{}, col.name) {
			continue
		}
		if err := db.Exec("ALTER TABLE " + ChatUser{}.TableName() + " ADD COLUMN " + col.ddl).Error; err != nil {
			return fmt.Errorf("add chat user column %s: %w", col.name, err)
		}
	}
	return nil
}

// errBadLogin is a wrong email or password; the login page does not say
// which.
var errBadLogin = errors.New("wrong email or password")

// authenticate returns the account with that email and password.
func authenticate(ctx context.Context, gdb *gorm.DB, email, password string) (*User, error) {
	var u User
	err := gdb.WithContext(ctx).Where("email = ?", normalizeEmail(email)).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// Hash anyway, so a wrong email takes as long as a wrong password.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return nil, errBadLogin
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, errBadLogin
	}
	return &u, nil
}

// dummyHash is compared against when no account matches.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such account"), bcrypt.DefaultCost)

// upsertUser creates the account with that email, or resets its name,
// password and level: how the demo accounts are seeded on every start.
func upsertUser(ctx context.Context, gdb *gorm.DB, email, name, password string, level, cost int) (*User, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, err
	}
	db := gdb.WithContext(ctx)
	var u User
	err = db.Where("email = ?", normalizeEmail(email)).Take(&u).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		u = User{Email: normalizeEmail(email), PasswordHash: string(hash), DisplayName: name, Level: level}
		err = db.Create(&u).Error
	case err == nil:
		u.PasswordHash, u.DisplayName, u.Level = string(hash), name, level
		err = db.Model(&u).Select("password_hash", "display_name", "level").Updates(&u).Error
	}
	if err != nil {
		return nil, fmt.Errorf("seed user %s: %w", email, err)
	}
	return &u, nil
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
