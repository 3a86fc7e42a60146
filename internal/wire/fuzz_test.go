package wire_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/internal/wire"
)

// FuzzDigits checks the uid and digit parsers on any input: they never
// panic, ParseUID and UID.UnmarshalJSON agree, what they accept is exactly
// 1 to 19 decimal digits, bare or in quotes, whose value fits (a uid also
// between 1 and MaxUID), and a value accepted round-trips through its
// JSON and its decimal text.
func FuzzDigits(f *testing.F) {
	for _, s := range []string{"1", `"10000001"`, "0", `"0"`, "9007199254740991", "9007199254740992",
		"9223372036854775807", "9223372036854775808", "-1", "+1", "1e3", "1.0", `"12`, `""`, "", " 1", "０", "00042"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var i wire.Int
		ierr := i.UnmarshalJSON([]byte(s))
		var u wire.UID
		uerr := u.UnmarshalJSON([]byte(s))
		uid, ok := wire.ParseUID(s)
		if ok != (uerr == nil) || (ok && uid != int64(u)) {
			t.Fatalf("%q: ParseUID gives %d %v, UID.UnmarshalJSON %d %v", s, uid, ok, u, uerr)
		}

		digits := s
		if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
			digits = s[1 : len(s)-1]
		}
		shaped := len(digits) >= 1 && len(digits) <= 19 && strings.Trim(digits, "0123456789") == ""
		want, perr := strconv.ParseInt(digits, 10, 64)
		wantInt := shaped && perr == nil
		if (ierr == nil) != wantInt || (wantInt && int64(i) != want) {
			t.Fatalf("%q: Int gives %d %v, want %v (%d)", s, i, ierr, wantInt, want)
		}
		wantUID := wantInt && want >= 1 && want <= wire.MaxUID
		if ok != wantUID || (ok && uid != want) {
			t.Fatalf("%q: ParseUID gives %d %v, want %v (%d)", s, uid, ok, wantUID, want)
		}
		if ierr != nil {
			return
		}
		for _, text := range []string{strconv.FormatInt(int64(i), 10), strconv.Quote(strconv.FormatInt(int64(i), 10))} {
			var again wire.Int
			if err := again.UnmarshalJSON([]byte(text)); err != nil || again != i {
				t.Fatalf("%q: %d does not round-trip through %s: %d %v", s, i, text, again, err)
			}
		}
		b, err := json.Marshal(int64(i))
		if err != nil {
			t.Fatal(err)
		}
		var again wire.Int
		if err := json.Unmarshal(b, &again); err != nil || again != i {
			t.Fatalf("%q: %d does not round-trip through JSON %s: %d %v", s, i, b, again, err)
		}
	})
}

// FuzzPlainString checks the decoder's fast path for strings: whatever
// PlainString takes, encoding/json decodes to the same text, and it takes
// every quoted run of printable ASCII without quotes or backslashes.
func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`"abc"`, `""`, `"a\"b"`, `"a\\b"`, `"é"`, "\"a\tb\"", `"\u0041"`, `abc`, `"`, `"abc`, `"a~ b!"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := wire.PlainString([]byte(s))
		if !ok {
			if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.ContainsFunc(s[1:len(s)-1], func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' }) {
				t.Fatalf("%q: refused a plain string", s)
			}
			return
		}
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil || got != want {
			t.Fatalf("%q: PlainString gives %q, encoding/json %q %v", s, got, want, err)
		}
	})
}
