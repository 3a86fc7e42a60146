package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"testing"
)

// FuzzFields checks jsonFields against what it replaces, json.Unmarshal
// into a map[string]json.RawMessage: the same bodies refused, and for the
// others the same keys (escapes and bytes that are not UTF-8 decoded
// alike, a repeated key keeping its last value) with the same raw values.
func FuzzFields(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"uid":7,"name":"ab"}`, `{"a":1,"a":2}`, `{"data":[{"uid":"1"},[2,{"x":"}]"}]],"b":null}`,
		`{"k\"ey":"v\\","\u0041":true,"n":-1.5e+3}`, "{\"\xff\":\"\xfe\"}", `{"a":{"b":{"c":[]}}, "d" : "e" }`,
		`{"a":1,}`, `{"a"}`, `{"a":1}x`, `[1]`, `"s"`, `{"a":tru}`, `{"a":"\x01"}`, "", "{\"a\":\"b\"\n}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.TrimSpace(body) // as parseFields hands it over
		got, gotErr := jsonFields(body)
		var want map[string]json.RawMessage
		var wantErr error
		switch {
		case len(body) == 0:
			want = map[string]json.RawMessage{}
		case body[0] != '{':
			wantErr = errors.New("not an object")
		default:
			if wantErr = json.Unmarshal(body, &want); want == nil {
				want = map[string]json.RawMessage{}
			}
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: jsonFields error %v, json.Unmarshal %v", body, gotErr, wantErr)
		}
		if gotErr == nil && !maps.EqualFunc(got, want, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("%q: jsonFields %q, json.Unmarshal %q", body, got, want)
		}
	})
}

// TestFieldsOwnTheirBytes checks that the values do not share the body's
// memory, which the server reuses for its next request.
func TestFieldsOwnTheirBytes(t *testing.T) {
	body := []byte(`{"a":"xyz"}`)
	fields, err := jsonFields(body)
	if err != nil {
		t.Fatal(err)
	}
	copy(body, `{"a":"abc"}`)
	if string(fields["a"]) != `"xyz"` {
		t.Fatalf("a value changed with the body: %s", fields["a"])
	}
}
