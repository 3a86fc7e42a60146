// Package clientcharset keeps go-sql-driver's client-side escaping
// (interpolateParams) to the connections where it is safe.
//
// The driver escapes a quote by putting a backslash before it. In a
// multibyte character set whose characters may end in the byte of a
// backslash (gbk, big5, sjis, cp932, gb18030, …), the byte before that
// backslash can start a character that swallows it, and the quote then
// ends the string: a text becomes SQL. The driver refuses
// interpolateParams with such a collation named in the DSN, but not with
// charset=gbk, nor with a server that sets the charset itself
// (init_connect, a character_set_client variable in the DSN). The only
// sure test is to ask each connection, which is what Guard does.
//
// Nothing here needs the database's other drivers, so the models package
// can use it without importing internal/database.
package clientcharset

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Query reads a connection's character_set_client: the charset its
// statements are parsed in, and so the one escaping must suit.
const Query = "SELECT @@character_set_client"

// Safe reports whether client-side escaping is safe on a connection whose
// character_set_client is name: UTF-8 (no character of two bytes or more
// holds a byte below 0x80) and the single-byte sets fiberchat's hosts
// use.
func Safe(name string) bool {
	switch strings.ToLower(name) {
	case "utf8mb4", "utf8mb3", "utf8", "latin1", "ascii", "binary":
		return true
	}
	return false
}

// Guard wraps c so that every new connection is asked its
// character_set_client (one round trip, once per connection). A
// connection where escaping is safe is handed out as the driver made it.
// Any other takes no statement with arguments itself: it answers
// driver.ErrSkip, and database/sql then prepares the statement on the
// server, which never escapes anything. The cost, a prepare and a close
// per such statement, falls only on those connections.
//
// c must be go-sql-driver's connector (or one that hands out its
// connections): the connections Guard wraps pass on the interfaces
// database/sql uses, which that driver's all have.
func Guard(c driver.Connector) driver.Connector { return guarded{c} }

type guarded struct{ driver.Connector }

func (g guarded) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := g.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	name, err := Of(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if Safe(name) {
		return conn, nil
	}
	return &unescaped{conn}, nil
}

// Of reads conn's character_set_client.
func Of(ctx context.Context, conn driver.Conn) (string, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return "", errors.New("read character_set_client: the driver's connection takes no queries")
	}
	rows, err := q.QueryContext(ctx, Query, nil)
	if err != nil {
		return "", fmt.Errorf("read character_set_client: %w", err)
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		if err == io.EOF {
			err = errors.New("no row")
		}
		return "", fmt.Errorf("read character_set_client: %w", err)
	}
	switch s := v[0].(type) {
	case []byte:
		return string(s), nil
	case string:
		return s, nil
	}
	return "", fmt.Errorf("read character_set_client: got %T", v[0])
}

// unescaped is a connection whose charset escaping cannot be trusted on:
// statements with arguments go to the server as prepared statements.
// Everything else is the driver's own.
type unescaped struct{ driver.Conn }

func (u *unescaped) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) > 0 {
		return nil, driver.ErrSkip
	}
	return u.Conn.(driver.ExecerContext).ExecContext(ctx, query, nil)
}

func (u *unescaped) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) > 0 {
		return nil, driver.ErrSkip
	}
	return u.Conn.(driver.QueryerContext).QueryContext(ctx, query, nil)
}

func (u *unescaped) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return u.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (u *unescaped) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return u.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (u *unescaped) Ping(ctx context.Context) error { return u.Conn.(driver.Pinger).Ping(ctx) }

func (u *unescaped) ResetSession(ctx context.Context) error {
	return u.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (u *unescaped) IsValid() bool { return u.Conn.(driver.Validator).IsValid() }

func (u *unescaped) CheckNamedValue(nv *driver.NamedValue) error {
	return u.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}
