package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
	gomysql "github.com/go-sql-driver/mysql"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// benchClientID is the API client every benchmark request is signed for.
const benchClientID = "bench"

// user is a user with an open session.
type user struct {
	UID   int64
	Token string
}

// fixture is what a prepared database holds for the workloads.
type fixture struct {
	secret string // the API client's
	users  []user
}

// signedPath returns path with the client_id and api_token query that
// sign it for today (UTC, the module's default zone). A run is far shorter
// than the five minutes around midnight in which the server also accepts
// the neighbouring day's token, so signing once per workload is enough.
func (f *fixture) signedPath(path string) string {
	return path + "?client_id=" + benchClientID + "&api_token=" + module.APIToken(path, f.secret, time.Now().UTC())
}

// prepare migrates the database dsn names and fills it through the
// module's own models: the API client, n users each with an open session,
// and each pair in contacts (indexes into the users) made mutual contacts.
//
// Rows go in directly, in batches, rather than through register, login
// and addContacts: ten thousand users through the API would cost minutes
// of set-up and measure nothing the workloads need.
func prepare(ctx context.Context, dsn string, n int, contacts [][2]int, log *slog.Logger) (*fixture, error) {
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer database.Close(gdb)
	chat, err := module.New(moduleConfig(gdb, os.TempDir(), log))
	if err != nil {
		return nil, err
	}
	defer chat.Close()
	if err := chat.Migrate(ctx); err != nil {
		return nil, err
	}
	secret, err := chat.CreateClient(ctx, benchClientID, "", "fiberchat benchmark")
	if err != nil {
		return nil, err
	}
	users, err := createUsers(ctx, chat.DB(), n)
	if err != nil {
		return nil, err
	}
	if err := befriend(ctx, chat.DB(), users, contacts); err != nil {
		return nil, err
	}
	return &fixture{secret: secret, users: users}, nil
}

// createUsers stores n users, all with one password hash (bcrypt at the
// cheapest cost: nobody logs in), and one session each. The sessions
// expire in 30 days, past the default idle lifetime of 7, so the auth gate
// never writes a new expiry during the run; a live session costs at most
// one such write a minute, which would not show in a few seconds anyway.
func createUsers(ctx context.Context, db *gorm.DB, n int) ([]user, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password"), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rows := make([]models.User, n)
	for i := range rows {
		rows[i] = models.User{Name: fmt.Sprintf("bench%d", i), PasswordHash: string(hash), CreatedAt: now.Unix(), UpdatedAt: now.Unix()}
	}
	users := make([]user, n)
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(rows, 500).Error; err != nil {
			return fmt.Errorf("create users: %w", err)
		}
		tokens := make([]models.UserToken, n)
		for i, u := range rows {
			tok, err := models.NewToken()
			if err != nil {
				return err
			}
			users[i] = user{UID: u.UID, Token: tok}
			tokens[i] = models.UserToken{UID: u.UID, TokenHash: models.HashToken(tok), ExpireTime: now.Add(30 * 24 * time.Hour).Unix(), CreatedAt: now.Unix()}
		}
		if err := tx.CreateInBatches(tokens, 500).Error; err != nil {
			return fmt.Errorf("create sessions: %w", err)
		}
		return nil
	})
	return users, err
}

// befriend stores both directions of each contact.
func befriend(ctx context.Context, db *gorm.DB, users []user, pairs [][2]int) error {
	if len(pairs) == 0 {
		return nil
	}
	now := time.Now().Unix()
	rows := make([]models.Contact, 0, 2*len(pairs))
	for _, p := range pairs {
		a, b := users[p[0]].UID, users[p[1]].UID
		rows = append(rows, models.Contact{UID: a, PeerUID: b, CreatedAt: now}, models.Contact{UID: b, PeerUID: a, CreatedAt: now})
	}
	if err := db.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("create contacts: %w", err)
	}
	return nil
}

// mysqlServer hands out fresh databases beside the one a DSN names and
// drops them at the end.
type mysqlServer struct {
	base  *gomysql.Config
	admin *sql.DB
	made  []string
}

func newMySQLServer(ctx context.Context, dsn string) (*mysqlServer, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("--mysql-dsn: %w", err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := admin.PingContext(pingCtx); err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("MariaDB/MySQL does not answer: %w", err)
	}
	return &mysqlServer{base: cfg, admin: admin}, nil
}

// fresh creates an empty database named fiberchat_bench_<random>_<what>
// and returns its DSN in database.Open's form.
func (m *mysqlServer) fresh(ctx context.Context, what string) (string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "fiberchat_bench_" + hex.EncodeToString(b) + "_" + what
	if _, err := m.admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	m.made = append(m.made, name)
	cfg := m.base.Clone()
	cfg.DBName = name
	return "mysql:" + cfg.FormatDSN(), nil
}

// close drops every database fresh made. It runs after the run's context
// may have ended, so it has a deadline of its own.
func (m *mysqlServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var failed []string
	for _, name := range m.made {
		if _, err := m.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			failed = append(failed, name)
		}
	}
	_ = m.admin.Close()
	if len(failed) > 0 {
		return fmt.Errorf("could not drop %s", strings.Join(failed, ", "))
	}
	return nil
}
