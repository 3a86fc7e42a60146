package models

import (
	"errors"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"
)

// quiet returns err with the message of the MySQL error in it cut at its
// first quote: MySQL quotes values and SQL in its messages ("Incorrect
// string value: '…'", "Duplicate entry '…'", "near '…'"), and a Send's are
// its text and its client_msg_id, which the module's log must not hold.
// The error's number and SQLSTATE stay, and errors.As still finds the
// driver's error for whoever classifies it.
func quiet(err error) error {
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
	return &quietError{err: err, msg: strings.Replace(err.Error(), me.Error(), cut.Error(), 1)}
}

// quietError is an error whose text quiet cut.
type quietError struct {
	err error
	msg string
}

func (e *quietError) Error() string { return e.msg }
func (e *quietError) Unwrap() error { return e.err }
