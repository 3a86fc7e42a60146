// Package wire decodes request bodies the way API.md defines them: JSON or
// form-encoded, uids as JSON integers or strings of decimal digits, every
// failure a 400/1001 naming the field. The credential middleware and the
// handlers both read bodies through it, so the two can never disagree on
// what a body says.
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"
)

// MaxUID is the largest uid the wire accepts; larger numbers are a 400
// rather than a silent overflow.
const MaxUID = 1<<53 - 1

// UIDRule says what a uid must be, for the message of one that is not.
const UIDRule = "must be a positive integer up to 2^53-1"

// UID is a user id as the contract accepts it: a positive JSON integer or a
// string of decimal digits. Anything else (negative, fractional, exponent,
// object, too large) fails to decode.
type UID int64

// UnmarshalJSON accepts 123 or "123".
func (u *UID) UnmarshalJSON(b []byte) error {
	n, err := parseDigits(b)
	if err != nil || n == 0 || n > MaxUID {
		return errInvalidValue
	}
	*u = UID(n)
	return nil
}

// Int is a small non-negative integer given as a JSON integer or a string of
// decimal digits (form bodies carry every value as a string).
type Int int64

// UnmarshalJSON accepts 1 or "1".
func (i *Int) UnmarshalJSON(b []byte) error {
	n, err := parseDigits(b)
	if err != nil {
		return errInvalidValue
	}
	*i = Int(n)
	return nil
}

var errInvalidValue = fmt.Errorf("invalid value")

// parseDigits reads an unsigned decimal integer, bare or quoted; it refuses
// signs, fractions, exponents and anything past int64.
func parseDigits(b []byte) (int64, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, errInvalidValue
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errInvalidValue
		}
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// ParseUID parses a uid given as text (a query parameter or header).
func ParseUID(s string) (int64, bool) {
	var u UID
	if err := u.UnmarshalJSON([]byte(s)); err != nil {
		return 0, false
	}
	return int64(u), true
}

// Decoder decodes and validates request bodies into structs tagged with
// `json` (the field's wire name) and `validate` (go-playground rules, plus
// the project's own: nocontrol, passwd, handle).
type Decoder struct {
	validate *validator.Validate
	// ruled caches, by request type, whether any field of it has a
	// validate tag: a type with none skips the validator, whose walk
	// boxes every field (see Validate).
	ruled sync.Map
}

// NewDecoder prepares the validator once; decoding is then safe for
// concurrent use.
func NewDecoder() *Decoder {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	// Registration only fails for an empty tag or nil func, never here.
	_ = v.RegisterValidation("nocontrol", func(fl validator.FieldLevel) bool {
		return NoControl(fl.Field().String())
	})
	_ = v.RegisterValidation("passwd", func(fl validator.FieldLevel) bool {
		n := len(fl.Field().String()) // bcrypt's limit is in bytes, not characters
		return n >= 6 && n <= 72
	})
	_ = v.RegisterValidation("handle", func(fl validator.FieldLevel) bool {
		return ValidHandle(fl.Field().String())
	})
	return &Decoder{validate: v}
}

// HandleRule says what a handle must be, for the message of one that is
// not. Handles are case-insensitive: capitals are taken and lower-cased.
const HandleRule = "must be 3 to 32 characters of a-z, 0-9, _ and ."

// ValidHandle reports whether s is a handle (API.md §14): 3 to 32 of
// [a-z0-9_.], in either case.
func ValidHandle(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	// Byte by byte, not strings.ToLower first: that maps a few non-ASCII
	// letters (the Kelvin sign) onto ASCII ones.
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // ASCII letters to lower case; digits, _ and . unchanged
		if !(c >= 'a' && c <= 'z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_' || s[i] == '.') {
			return false
		}
	}
	return true
}

// NoControl reports whether s is valid UTF-8 without control characters
// (NUL, newlines, escapes), which have no place in names or tokens.
func NoControl(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Decode fills dst (a pointer to a struct) from the request body and
// validates it. Every failure is a 400/1001 whose message names the field.
func (d *Decoder) Decode(c *fiber.Ctx, dst any) error {
	fields, err := Fields(c)
	if err != nil {
		return err
	}
	if fromForm(c) {
		fields = formLists(fields, reflect.TypeOf(dst).Elem())
	}
	if err := assign(fields, dst); err != nil {
		return err
	}
	return d.Validate(dst)
}

// Validate runs the struct's `validate` tags and turns the first failure
// into a 400 naming the field.
//
// A type without a single validate tag is not walked: the validator
// boxes each field it visits (to look for a driver.Valuer), a few
// allocations a request on the hottest routes, which check their fields
// in code (Send's client_msg_id: see TextRule).
func (d *Decoder) Validate(dst any) error {
	t := reflect.TypeOf(dst)
	ruled, ok := d.ruled.Load(t)
	if !ok {
		ruled, _ = d.ruled.LoadOrStore(t, hasRules(t, map[reflect.Type]bool{}))
	}
	if !ruled.(bool) {
		return nil
	}
	err := d.validate.Struct(dst)
	if err == nil {
		return nil
	}
	if verrs, ok := err.(validator.ValidationErrors); ok && len(verrs) > 0 {
		fe := verrs[0]
		// The namespace is the field's path in wire names (data[2].uid)
		// behind the Go name of the request struct.
		_, path, _ := strings.Cut(fe.Namespace(), ".")
		return apierr.Invalid("invalid %s: %s", path, describe(fe))
	}
	return apierr.Invalid("invalid body")
}

// hasRules reports whether t, or a struct it holds, has a field with a
// validate tag; seen stops a type that holds itself.
func hasRules(t reflect.Type, seen map[reflect.Type]bool) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return false
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("validate") != "" || hasRules(f.Type, seen) {
			return true
		}
	}
	return false
}

// TextRule checks s as the tags "max=max,nocontrol" would, with the same
// message, for a request that checks its fields in code (see Validate).
func TextRule(path, s string, max int) error {
	switch {
	case utf8.RuneCountInString(s) > max:
		return apierr.Invalid("invalid %s: max length %d characters", path, max)
	case !NoControl(s):
		return apierr.Invalid("invalid %s: must be text without control characters", path)
	}
	return nil
}

func describe(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "required"
	case "min", "max", "len":
		if fe.Kind() == reflect.Slice {
			return fmt.Sprintf("needs %s %s entries", fe.Tag(), fe.Param())
		}
		if fe.Kind() == reflect.String {
			return fmt.Sprintf("%s length %s characters", fe.Tag(), fe.Param())
		}
		return fmt.Sprintf("%s %s", fe.Tag(), fe.Param())
	case "nocontrol":
		return "must be text without control characters"
	case "passwd":
		return "must be 6 to 72 bytes"
	case "handle":
		return HandleRule
	case "required_without":
		return "required unless " + strings.ToLower(fe.Param()) + " is given"
	case "oneof":
		return "must be one of " + fe.Param()
	default:
		return "failed " + fe.Tag()
	}
}

// Fields returns the body's top-level fields as raw JSON values, whatever
// the body's encoding: a JSON object as it is, a form (urlencoded or
// multipart) with each value as a JSON string. Decode reads a form's
// value as JSON where its field is a list or an object (see formLists),
// so that `data` lists can be sent in forms too, and as the text it is
// where its field is a string, whatever that text looks like.
// The result is cached on the request, so the middleware and the handler
// parse a body once between them.
func Fields(c *fiber.Ctx) (map[string]json.RawMessage, error) {
	if cached, ok := c.Locals(fieldsKey{}).(map[string]json.RawMessage); ok {
		return cached, nil
	}
	fields, form, err := parseFields(c)
	if err != nil {
		return nil, err
	}
	c.Locals(fieldsKey{}, fields)
	if form {
		c.Locals(formKey{}, true)
	}
	return fields, nil
}

type fieldsKey struct{}

// formKey marks a request whose fields came from a form.
type formKey struct{}

func fromForm(c *fiber.Ctx) bool {
	form, _ := c.Locals(formKey{}).(bool)
	return form
}

// formLists returns fields with each value of a list or object field of
// t (a request struct) that is a string holding a JSON list or object
// replaced by that JSON: a form's values are all text. fields is not
// changed; a copy is made when anything is replaced.
func formLists(fields map[string]json.RawMessage, t reflect.Type) map[string]json.RawMessage {
	if t.Kind() != reflect.Struct {
		return fields
	}
	copied := false
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		raw, ok := fields[name]
		if name == "" || name == "-" || !ok || len(raw) == 0 || raw[0] != '"' || !holdsJSON(t.Field(i).Type) {
			continue
		}
		var text string
		if json.Unmarshal(raw, &text) != nil {
			continue
		}
		trimmed := strings.TrimSpace(text)
		if len(trimmed) == 0 || (trimmed[0] != '[' && trimmed[0] != '{') || !json.Valid([]byte(trimmed)) {
			continue
		}
		if !copied {
			fields, copied = maps.Clone(fields), true
		}
		fields[name] = json.RawMessage(trimmed)
	}
	return fields
}

// holdsJSON reports whether a field of type t takes a list or an object.
func holdsJSON(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct, reflect.Interface:
		return true
	}
	return false
}

// parseFields parses the body's fields, and says whether they came from
// a form.
func parseFields(c *fiber.Ctx) (map[string]json.RawMessage, bool, error) {
	ctype := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentType)))
	body := c.Request().Body() // raw: never decompressed
	trimmed := bytes.TrimSpace(body)
	switch {
	case strings.HasPrefix(ctype, fiber.MIMEMultipartForm):
		fields, err := formFields(c, true)
		return fields, true, err
	case strings.HasPrefix(ctype, fiber.MIMEApplicationForm):
		// curl -d and many HTTP libraries label any body a form; a form
		// never starts with "{", so such a body is JSON sent mislabelled.
		if len(trimmed) > 0 && trimmed[0] == '{' {
			fields, err := jsonFields(trimmed)
			return fields, false, err
		}
		fields, err := formFields(c, false)
		return fields, true, err
	case ctype == "" || strings.HasPrefix(ctype, fiber.MIMEApplicationJSON) || strings.HasPrefix(ctype, "text/plain"):
		// Seed-era clients often send JSON without a content type.
		fields, err := jsonFields(trimmed)
		return fields, false, err
	default:
		return nil, false, apierr.Invalid("malformed body: unsupported content type")
	}
}

// jsonFields splits a JSON object into its members, as json.Unmarshal
// into a map[string]json.RawMessage does (a repeated key keeps its last
// value), at a fraction of its cost: once json.Valid has checked the
// whole body, the members are found by one pass over it, and only a key
// with escapes or bytes that are not UTF-8 is decoded by encoding/json.
// Decoding each request's body through a map was the largest single cost
// of a Send (docs/performance.md).
func jsonFields(body []byte) (map[string]json.RawMessage, error) {
	if len(body) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if body[0] != '{' {
		return nil, apierr.Invalid("malformed body: expected a JSON object")
	}
	if !json.Valid(body) {
		return nil, apierr.Invalid("malformed body: invalid JSON")
	}
	// The values outlive the request's buffer, which the server reuses.
	body = bytes.Clone(body)
	fields := map[string]json.RawMessage{}
	i := skipSpace(body, 1)
	if body[i] == '}' {
		return fields, nil
	}
	for {
		// body is valid JSON: a member is a string, a colon and a value,
		// and members are parted by commas.
		i = skipSpace(body, i)
		keyEnd := endOfString(body, i)
		key := body[i+1 : keyEnd-1]
		name := string(key)
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			if err := json.Unmarshal(body[i:keyEnd], &name); err != nil {
				return nil, apierr.Invalid("malformed body: invalid JSON")
			}
		}
		i = skipSpace(body, skipSpace(body, keyEnd)+1) // past the colon
		end := endOfValue(body, i)
		fields[name] = json.RawMessage(body[i:end:end])
		i = skipSpace(body, end)
		if body[i] == '}' {
			return fields, nil
		}
		i++ // the comma
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just past the valid JSON string that
// starts at b[i].
func endOfString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// endOfValue returns the index just past the valid JSON value that starts
// at b[i].
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = endOfString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	default: // a number, true, false or null
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}

func formFields(c *fiber.Ctx, multipart bool) (map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	add := func(k, v string) { FormValue(fields, k, v) }
	if multipart {
		form, err := c.MultipartForm()
		if err != nil {
			return nil, apierr.Invalid("malformed body: invalid multipart form")
		}
		for k, vs := range form.Value {
			if len(vs) > 0 {
				add(k, vs[0])
			}
		}
		return fields, nil
	}
	c.Request().PostArgs().VisitAll(func(k, v []byte) {
		key := string(k)
		if _, seen := fields[key]; !seen {
			add(key, string(v))
		}
	})
	return fields, nil
}

// assign decodes each json-tagged field of dst from its raw value, so a
// failure can name the field as the client wrote it, down into lists and
// objects (data[2].uid): encoding/json names no field for a custom type's
// error, and never an index.
func assign(fields map[string]json.RawMessage, dst any) error {
	return assignStruct("", fields, reflect.ValueOf(dst).Elem())
}

func assignStruct(path string, fields map[string]json.RawMessage, v reflect.Value) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			continue
		}
		if path != "" {
			name = path + "." + name
		}
		if err := assignValue(name, raw, v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// assignPlain decodes, without encoding/json's reflection, the values
// every request carries: a type of its own decoding (the uids, wire.Int)
// by its UnmarshalJSON, as encoding/json would call it, and a string of
// printable ASCII without escapes, which encoding/json would copy as it
// is. done is false for anything else, which assignValue hands to
// encoding/json.
func assignPlain(raw json.RawMessage, v reflect.Value, custom bool) (done bool, err error) {
	switch {
	case custom:
		return true, v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw)
	case v.Kind() == reflect.String:
		s, ok := PlainString(raw)
		if ok {
			v.SetString(s)
		}
		return ok, nil
	}
	return false, nil
}

// PlainString returns the text of raw, a JSON string, when it is
// printable ASCII without escapes: then it is the bytes between the
// quotes, and no decoder is needed. ok is false for any other raw.
func PlainString(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(body), true
}

// invalidAs is assignValue's error for a value of type t at path that
// did not decode (nil for err nil).
func invalidAs(path string, t reflect.Type, err error) error {
	if err == nil {
		return nil
	}
	if want := expected(t); want != "" {
		return apierr.Invalid("invalid %s: %s", path, want)
	}
	return apierr.Invalid("invalid %s", path)
}

// assignValue decodes raw (valid JSON, not null) into v: a struct member
// by member and a list entry by entry, so that the failure names the
// innermost field; anything else by encoding/json.
func assignValue(path string, raw json.RawMessage, v reflect.Value) error {
	t := v.Type()
	custom := reflect.PointerTo(t).Implements(unmarshaler)
	switch {
	case t.Kind() == reflect.Struct && !custom:
		if raw[0] != '{' {
			return apierr.Invalid("invalid %s: must be an object", path)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return apierr.Invalid("invalid %s", path)
		}
		return assignStruct(path, fields, v)
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 && !custom:
		if raw[0] != '[' {
			return apierr.Invalid("invalid %s: must be a list", path)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return apierr.Invalid("invalid %s", path)
		}
		list := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			if string(item) == "null" {
				continue
			}
			if err := assignValue(fmt.Sprintf("%s[%d]", path, i), item, list.Index(i)); err != nil {
				return err
			}
		}
		v.Set(list)
		return nil
	}
	if done, err := assignPlain(raw, v, custom); done {
		return invalidAs(path, t, err)
	}
	return invalidAs(path, t, json.Unmarshal(raw, v.Addr().Interface()))
}

// expected says what a field of type t must be, for the message of a
// value that is not that.
func expected(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[UID]():
		return UIDRule
	case t == reflect.TypeFor[Int]():
		return "must be a non-negative integer"
	case t.Kind() == reflect.String:
		return "must be a string"
	}
	return ""
}

// SetFields makes fields, a form's (see FormValue), the request's body
// fields, for a route that reads its body itself (a streamed multipart
// upload reads the fields before its file part): the credential
// middleware and the handler then see them as they would a body's.
func SetFields(c *fiber.Ctx, fields map[string]json.RawMessage) {
	c.Locals(fieldsKey{}, fields)
	c.Locals(formKey{}, true)
}

// FormValue adds a form field's value to fields as formFields does: as
// a JSON string.
func FormValue(fields map[string]json.RawMessage, k, v string) {
	q, _ := json.Marshal(v) // marshalling a string cannot fail
	fields[k] = q
}
