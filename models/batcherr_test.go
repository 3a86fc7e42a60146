package models

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
)

func TestQuietCutsQuotedText(t *testing.T) {
	dup := &gomysql.MySQLError{Number: 1062, SQLState: [5]byte{'2', '3', '0', '0', '0'}, Message: "Duplicate entry '7-secret-key' for key 'from_uid'"}
	err := quiet(fmt.Errorf("create messages: %w", dup))
	if got, want := err.Error(), "create messages: Error 1062 (23000): Duplicate entry …"; got != want {
		t.Errorf("quiet: %q, want %q", got, want)
	}
	if !isDuplicate(err) {
		t.Error("quiet hid the driver's error from isDuplicate")
	}
	if again := quiet(err); again.Error() != err.Error() {
		t.Errorf("quiet twice: %q, want %q", again, err)
	}
	for _, same := range []error{
		nil,
		errors.New("no database error 'here'"),
		&gomysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded; try restarting transaction"},
	} {
		if got := quiet(same); got != same {
			t.Errorf("quiet(%v) = %v, want it as it was", same, got)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("quiet left the text: %q", err)
	}
}
