package middleware_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// contentTypes are the bodies Credentials is asked to read from.
var contentTypes = []string{
	fiber.MIMEApplicationJSON,
	fiber.MIMEApplicationForm,
	fiber.MIMEMultipartForm + "; boundary=X",
	"",
	"text/plain",
}

// FuzzCredentials runs Credentials through a Fiber app's request context
// on any body, content type, query and headers, and checks that it never
// panics, fails only with the client's 4xx, and that a uid it returns is
// one the contract allows.
func FuzzCredentials(f *testing.F) {
	f.Add(`{"uid":10000001,"access_token":"abc"}`, uint8(0), "", "", "")
	f.Add(`{"uid":"10000001","access_token":12}`, uint8(0), "", "", "")
	f.Add(`{"uid":-1,"access_token":"x"}`, uint8(0), "", "", "")
	f.Add("uid=10000001&access_token=abc", uint8(1), "", "", "")
	f.Add("--X\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\nabc\r\n--X--\r\n", uint8(2), "", "", "")
	f.Add("", uint8(3), "user_id=10000001&user_token=abc", "", "")
	f.Add("", uint8(3), "user_token=abc", "", "")
	f.Add("", uint8(3), "", "10000001", "abc")
	f.Add("", uint8(3), "", "1e3", "abc")
	f.Add("[1,2]", uint8(0), "user_id=%zz", "", "")
	app := fiber.New()
	f.Fuzz(func(t *testing.T, body string, ctype uint8, query, xuid, xtoken string) {
		fctx := &fasthttp.RequestCtx{}
		fctx.Request.Header.SetMethod(fiber.MethodPost)
		fctx.Request.SetRequestURI("/user/info?" + query)
		if ct := contentTypes[int(ctype)%len(contentTypes)]; ct != "" {
			fctx.Request.Header.SetContentType(ct)
		}
		fctx.Request.Header.Set("X-Uid", xuid)
		fctx.Request.Header.Set("X-Access-Token", xtoken)
		fctx.Request.SetBodyString(body)
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)

		uid, _, err := middleware.Credentials(c)
		if err != nil {
			var e *apierr.Error
			var fe *fiber.Error
			switch {
			case errors.As(err, &e) && e.Status >= 400 && e.Status < 500:
			case errors.As(err, &fe) && fe.Code >= 400 && fe.Code < 500:
			default:
				t.Fatalf("body %q (%s), query %q, X-Uid %q: %v, want a 4xx", body, contentTypes[int(ctype)%len(contentTypes)], query, xuid, err)
			}
			return
		}
		if uid < 0 || uid > wire.MaxUID {
			t.Fatalf("body %q, query %q, X-Uid %q: uid %d outside the contract", body, query, xuid, uid)
		}
	})
}

// FuzzRouteName checks the route naming api_tokens are computed from: it
// never panics, ignores case (ASCII) and empty segments, and is the first
// three segments joined, "index" standing in for a missing one.
func FuzzRouteName(f *testing.F) {
	for _, p := range []string{"/Message/Send", "/user/login", "/user/reg/ajax_reg", "/", "", "//a//b/", "/a/b/c/d", "/İ/ß/Ω", "/\xff/x"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got := middleware.RouteName(path)
		if strings.Contains(got, "/") {
			t.Fatalf("RouteName(%q) = %q holds a slash", path, got)
		}
		var segs []string
		for _, s := range strings.Split(strings.ToLower(path), "/") {
			if s != "" {
				segs = append(segs, s)
			}
		}
		for len(segs) < 3 {
			segs = append(segs, "index")
		}
		if want := segs[0] + segs[1] + segs[2]; got != want {
			t.Fatalf("RouteName(%q) = %q, want %q", path, got, want)
		}
		if again := middleware.RouteName("/" + strings.ToLower(path) + "/"); again != got {
			t.Fatalf("RouteName(%q) = %q, but of its lower case with slashes around %q", path, got, again)
		}
		if isASCII(path) {
			if upper := middleware.RouteName(strings.ToUpper(path)); upper != got {
				t.Fatalf("RouteName(%q) = %q, of its upper case %q", path, got, upper)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
