package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"syscall"

	"github.com/fiberchat/fiberchat/internal/database/failover"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	sqlite "modernc.org/sqlite"
)

// This file is the one place that classifies database errors: every other
// package asks Unavailable, and the store asks isDuplicate and isDeadlock.
// It is also the one place that knows which of their texts may be logged:
// every other package passes a database error through Redact first.
// It reads the drivers' own error codes. GORM's TranslateError is not used:
// the SQLite dialector translates constraint failures only, so the SQLite
// codes for busy and locked would be needed anyway, and on MySQL translating would
// replace the driver's error, with the key it names, by a bare sentinel.

// MySQL/MariaDB server error numbers (the Number of *mysql.MySQLError).
const (
	mysqlDupEntry        = 1062 // ER_DUP_ENTRY
	mysqlNoParent        = 1452 // ER_NO_REFERENCED_ROW_2
	mysqlTooManyConns    = 1040 // ER_CON_COUNT_ERROR
	mysqlServerShutdown  = 1053 // ER_SERVER_SHUTDOWN
	mysqlLockWaitTimeout = 1205 // ER_LOCK_WAIT_TIMEOUT
	mysqlDeadlock        = 1213 // ER_LOCK_DEADLOCK
	mysqlConnKilled      = 1927 // MariaDB's ER_CONNECTION_KILLED
)

// SQLite result codes (https://sqlite.org/rescode.html). The driver turns
// on extended codes, so a constraint failure says which constraint; busy
// and locked are compared by their primary code (the low byte).
const (
	sqliteBusy                 = 5    // SQLITE_BUSY
	sqliteLocked               = 6    // SQLITE_LOCKED
	sqliteConstraintPrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteConstraintUnique     = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

// Unavailable reports whether err means the database could not be reached
// or was too busy to answer, as opposed to a bug: the client may retry. A
// deadlock counts, for the store returns one only once its retries ran out,
// and a deadlock victim was rolled back whole.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, gomysql.ErrInvalidConn),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &netErr):
		return true
	}
	if n, ok := mysqlNumber(err); ok {
		switch n {
		case mysqlTooManyConns, mysqlServerShutdown, mysqlLockWaitTimeout, mysqlDeadlock, mysqlConnKilled:
			return true
		}
		// A Galera node cut off from the primary component, or a server
		// made read-only in a failover: a node that cannot take the
		// request now, not a bug.
		return failover.NotReady(err)
	}
	if code, ok := sqliteCode(err); ok {
		primary := code & 0xff
		return primary == sqliteBusy || primary == sqliteLocked
	}
	// database/sql's "database is closed" is an unexported errors.New, so
	// its text is all there is to go on. The SQLite texts are for a host
	// whose pool runs another SQLite driver (mattn's, say), whose error
	// type the module does not import; they are SQLite's own messages,
	// the same whatever the driver.
	msg := err.Error()
	return strings.Contains(msg, "sql: database is closed") ||
		strings.Contains(msg, "database is locked") ||
		strings.Contains(msg, "database table is locked")
}

// isDuplicate reports whether err is a unique-key violation.
func isDuplicate(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		// What GORM returns should a dialector translate errors.
		return true
	}
	if n, ok := mysqlNumber(err); ok {
		return n == mysqlDupEntry
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqliteConstraintUnique || code == sqliteConstraintPrimaryKey
	}
	// SQLite's own text, for a pool on another SQLite driver (see Unavailable).
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isDeadlock reports whether MySQL/MariaDB chose err's transaction as a
// deadlock victim: it was rolled back and may simply be run again.
func isDeadlock(err error) bool {
	n, ok := mysqlNumber(err)
	return ok && n == mysqlDeadlock
}

// nodeNotReady reports whether err is a server that cannot take the
// request now (failover.NotReady): a Galera node out of the primary
// component, or one switched to read-only. A connection to it is worth
// giving up for a new one, which a DSN listing several servers sends to
// one that is ready (internal/database/failover).
func nodeNotReady(err error) bool { return failover.NotReady(err) }

// isMissingParent reports whether err is MySQL/MariaDB refusing a row
// whose foreign key names a row that is not there (a recipient gone).
func isMissingParent(err error) bool {
	n, ok := mysqlNumber(err)
	return ok && n == mysqlNoParent
}

func mysqlNumber(err error) (uint16, bool) {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return me.Number, true
	}
	return 0, false
}

func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	return 0, false
}

// Redact returns err with the message of the MySQL error in it cut at its
// first quote: MySQL quotes values and SQL in its messages ("Incorrect
// string value: '…'", "Duplicate entry '…'", "near '…'"), and a Send's are
// its text and its client_msg_id, a user's their name, which the module's
// log must not hold. The error's number and SQLSTATE stay, and errors.As
// still finds the driver's error for whoever classifies it. Any other
// error (SQLite's name the constraint, never the values) is returned as
// it is.
func Redact(err error) error {
	var me *gomysql.MySQLError
	if err == nil || !errors.As(err, &me) {
		return err
	}
	i := strings.IndexByte(me.Message, '\'')
	if i < 0 {
		return err
	}
	cut := *me
	cut.Message = me.Message[:i] + "…"
	return &redactedError{err: err, msg: strings.Replace(err.Error(), me.Error(), cut.Error(), 1)}
}

// redactedError is an error whose text Redact cut.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
