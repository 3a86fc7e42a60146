package models

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
)

func TestRedactCutsQuotedText(t *testing.T) {
	dup := &gomysql.MySQLError{Number: 1062, SQLState: [5]byte{'2', '3', '0', '0', '0'}, Message: "Duplicate entry '7-secret-key' for key 'from_uid'"}
	err := Redact(fmt.Errorf("create messages: %w", dup))
	if got, want := err.Error(), "create messages: Error 1062 (23000): Duplicate entry …"; got != want {
		t.Errorf("Redact: %q, want %q", got, want)
	}
	if !isDuplicate(err) {
		t.Error("Redact hid the driver's error from isDuplicate")
	}
	if again := Redact(err); again.Error() != err.Error() {
		t.Errorf("Redact twice: %q, want %q", again, err)
	}
	for _, same := range []error{
		nil,
		errors.New("no database error 'here'"),
		&gomysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded; try restarting transaction"},
	} {
		if got := Redact(same); got != same {
			t.Errorf("Redact(%v) = %v, want it as it was", same, got)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("Redact left the text: %q", err)
	}
}
