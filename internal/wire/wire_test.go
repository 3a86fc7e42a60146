package wire_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/gofiber/fiber/v2"
)

func TestUID(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`10000001`, 10000001, true},
		{`"10000001"`, 10000001, true},
		{`9007199254740991`, 9007199254740991, true},
		{`9007199254740992`, 0, false}, // past 2^53-1: JavaScript clients could not hold it
		{`0`, 0, false},
		{`-1`, 0, false},
		{`"-1"`, 0, false},
		{`1.5`, 0, false},
		{`1e7`, 0, false},
		{`"1e7"`, 0, false},
		{`" 12"`, 0, false},
		{`""`, 0, false},
		{`{}`, 0, false},
		{`[1]`, 0, false},
		{`true`, 0, false},
		{`99999999999999999999999`, 0, false},
		{`"12\u0000"`, 0, false},
	}
	for _, tc := range cases {
		var u wire.UID
		err := json.Unmarshal([]byte(tc.in), &u)
		if (err == nil) != tc.ok || (tc.ok && int64(u) != tc.want) {
			t.Errorf("%s: got %d, %v; want %d ok=%v", tc.in, u, err, tc.want, tc.ok)
		}
	}
}

type sample struct {
	UID  wire.UID `json:"uid" validate:"required"`
	Name string   `json:"name" validate:"required,max=4,nocontrol"`
	Type wire.Int `json:"type" validate:"oneof=0 1"`
	Data []struct {
		UID wire.UID `json:"uid" validate:"required"`
	} `json:"data" validate:"max=2,dive"`
}

func decode(t *testing.T, ctype, body string) (sample, error) {
	t.Helper()
	var got sample
	var derr error
	app := fiber.New()
	d := wire.NewDecoder()
	app.Post("/", func(c *fiber.Ctx) error {
		derr = d.Decode(c, &got)
		return nil
	})
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if _, err := app.Test(req, -1); err != nil {
		t.Fatal(err)
	}
	return got, derr
}

func TestDecode(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	cases := []struct {
		name, ctype, body string
		field             string // "" = success
	}{
		{"json", "application/json", `{"uid":7,"name":"ab","type":1,"data":[{"uid":"8"}]}`, ""},
		{"json no content type", "", `{"uid":"7","name":"ab"}`, ""},
		{"form", form, `uid=7&name=ab&type=1&data=[{"uid":8}]`, ""},
		{"form bad uid", form, `uid=x7&name=ab`, "uid"},
		{"json labelled as a form (curl -d)", form, `{"uid":7,"name":"ab"}`, ""},
		{"malformed json labelled as a form", form, `{"uid":7,`, "JSON"},
		{"name too long (runes)", "application/json", `{"uid":7,"name":"ábcdé"}`, "name"},
		{"name NUL", "application/json", `{"uid":7,"name":"a\u0000"}`, "name"},
		{"type 2", "application/json", `{"uid":7,"name":"a","type":2}`, "type"},
		{"type string", "application/json", `{"uid":7,"name":"a","type":"yes"}`, "type"},
		{"data not a list", "application/json", `{"uid":7,"name":"a","data":{"uid":1}}`, "data"},
		{"data too long", "application/json", `{"uid":7,"name":"a","data":[{"uid":1},{"uid":2},{"uid":3}]}`, "data"},
		{"data entry bad uid", "application/json", `{"uid":7,"name":"a","data":[{"uid":-1}]}`, "data[0].uid: " + wire.UIDRule},
		{"data second entry text uid", "application/json", `{"uid":7,"name":"a","data":[{"uid":1},{"uid":"abc"}]}`, "data[1].uid"},
		{"data entry missing uid", "application/json", `{"uid":7,"name":"a","data":[{"uid":1},{}]}`, "data[1].uid: required"},
		{"data entry not an object", "application/json", `{"uid":7,"name":"a","data":[1]}`, "data[0]: must be an object"},
		{"data not a list in a form", form, `uid=7&name=a&data=abc`, "data: must be a list"},
		{"uid missing", "application/json", `{"name":"a"}`, "uid"},
		{"array body", "application/json", `[1]`, "object"},
		{"trailing garbage", "application/json", `{"uid":7,"name":"a"} x`, "JSON"},
		{"xml", "text/xml", `<a/>`, "content type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decode(t, tc.ctype, tc.body)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				if got.UID != 7 || got.Name != "ab" && got.Name != "a" {
					t.Fatalf("decoded %+v", got)
				}
				return
			}
			e, ok := apierr.As(err)
			if !ok || e.Code != apierr.CodeInvalid || e.Status != 400 || !strings.Contains(e.Msg, tc.field) {
				t.Fatalf("got %v, want a 400/1001 naming %q", err, tc.field)
			}
		})
	}
}

// FuzzDecode checks that no body, however odd, makes decoding panic or
// fail with anything but the contract's 400.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"uid":7,"name":"ab"}`, `[]`, `{"data":[{"uid":"1"}]}`, `{"uid":1e400}`, "{\"name\":\"\xff\"}"} {
		f.Add(s)
	}
	app := fiber.New()
	d := wire.NewDecoder()
	var derr error
	app.Post("/", func(c *fiber.Ctx) error {
		var s sample
		derr = d.Decode(c, &s)
		return nil
	})
	f.Fuzz(func(t *testing.T, body string) {
		derr = nil
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if _, err := app.Test(req, -1); err != nil {
			t.Fatal(err)
		}
		if derr != nil {
			if e, ok := apierr.As(derr); !ok || e.Status != 400 {
				t.Fatalf("body %q: %v", body, derr)
			}
		}
	})
}

// TestValidateSkipsOnlyRulelessTypes: the validator is skipped for a type
// with no rule at all, never for one whose only rule is in a struct it
// holds; TextRule says what the tags it stands for say.
func TestValidateSkipsOnlyRulelessTypes(t *testing.T) {
	type entry struct {
		UID wire.UID `json:"uid" validate:"required"`
	}
	type nested struct {
		Inner entry `json:"inner"`
	}
	type ruleless struct {
		Name string `json:"name"`
	}
	d := wire.NewDecoder()
	for range 2 { // the second time from the cache
		if err := d.Validate(&nested{}); err == nil || !strings.Contains(err.Error(), "inner.uid: required") {
			t.Fatalf("nested rule: got %v", err)
		}
		if err := d.Validate(&ruleless{Name: "a\x00"}); err != nil {
			t.Fatalf("ruleless: got %v", err)
		}
	}
	for _, tc := range []struct{ s, want string }{
		{strings.Repeat("é", 64), ""},
		{strings.Repeat("é", 65), "invalid k: max length 64 characters"},
		{"a\nb", "invalid k: must be text without control characters"},
		{"\xff", "invalid k: must be text without control characters"},
	} {
		err := wire.TextRule("k", tc.s, 64)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Fatalf("TextRule(%q) = %v, want %q", tc.s, err, tc.want)
		}
	}
}
