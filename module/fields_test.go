package module_test

import (
	"bytes"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
)

// TestEveryBadFieldIsNamed sends each route of API.md §§1–11 a body with
// one field wrong and checks the answer is 400/1001 with a msg naming that
// field as the client wrote it (API.md §2): "invalid <field>" or
// "invalid <field>: <why>", a list entry's field by its index.
func TestEveryBadFieldIsNamed(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		u := s.NewUser(t, "a")
		peer := s.NewUser(t, "b")
		type m = map[string]any
		list := func(entries ...any) []any { return entries }
		uidList := make([]any, 101)
		for i := range uidList {
			uidList[i] = m{"uid": peer.UID}
		}
		// authed is a request with u's credentials in the body.
		authed := func(path string, fields m) chattest.Req {
			return chattest.Req{Path: path, JSON: u.Creds(fields)}
		}
		cases := []struct {
			name  string
			req   chattest.Req
			field string
		}{
			// §1b: the credentials' uid, in each of its places.
			{"body uid", chattest.Req{Path: "/user/info", JSON: m{"uid": "abc", "access_token": u.Token}}, "uid"},
			{"query user_id", chattest.Req{Path: "/user/info?" + url.Values{"user_id": {"abc"}, "user_token": {u.Token}}.Encode()}, "user_id"},
			{"header X-Uid", chattest.Req{Path: "/user/info", Header: map[string]string{"X-Uid": "-1", "X-Access-Token": u.Token}}, "X-Uid"},
			// §3
			{"register name list", chattest.Req{Path: "/user/reg/ajax_reg", JSON: m{"name": list("x"), "passwd": "secret1"}}, "name"},
			{"register passwd number", chattest.Req{Path: "/user/reg/ajax_reg", JSON: m{"name": "x", "passwd": 1234567}}, "passwd"},
			{"login uid text", chattest.Req{Path: "/user/login", JSON: m{"uid": "abc", "passwd": "secret1"}}, "uid"},
			{"login uid missing", chattest.Req{Path: "/user/login", JSON: m{"passwd": "secret1"}}, "uid"},
			{"login passwd missing", chattest.Req{Path: "/user/login", JSON: m{"uid": u.UID}}, "passwd"},
			{"update name too long", authed("/user/info/update", m{"name": strings.Repeat("x", 33)}), "name"},
			{"update head_img object", authed("/user/info/update", m{"head_img": m{}}), "head_img"},
			{"passwd old missing", authed("/user/info/passwd", m{"new_passwd": "newpass1"}), "old_passwd"},
			{"passwd new missing", authed("/user/info/passwd", m{"old_passwd": u.Password}), "new_passwd"},
			// §4, and §9's block lists, which share the data list.
			{"block uid text", authed("/Contacts/IO/block", m{"data": list(m{"uid": "abc"})}), "data[0].uid"},
			{"unblock second uid negative", authed("/Contacts/IO/unblock", m{"data": list(m{"uid": peer.UID}, m{"uid": -1})}), "data[1].uid"},
			{"info uid missing", authed("/Contacts/Info", m{"data": list(m{"uid": peer.UID}, m{})}), "data[1].uid"},
			{"info entry null", authed("/Contacts/Info", m{"data": list(nil)}), "data[0].uid"},
			{"add entry a number", authed("/Contacts/IO/addContacts", m{"data": list(peer.UID)}), "data[0]"},
			{"add data an object", authed("/Contacts/IO/addContacts", m{"data": m{"uid": peer.UID}}), "data"},
			{"add data empty", authed("/Contacts/IO/addContacts", m{"data": list()}), "data"},
			{"add data missing", authed("/Contacts/IO/addContacts", nil), "data"},
			{"del data past 100", authed("/Contacts/IO/delContacts", m{"data": uidList}), "data"},
			{"del uid fraction", authed("/Contacts/IO/delContacts", m{"data": list(m{"uid": 1.5})}), "data[0].uid"},
			{"accept uid_from text", authed("/Contacts/IO/acceptContacts", m{"uid_from": "abc", "type": 1}), "uid_from"},
			{"accept type 2", authed("/Contacts/IO/acceptContacts", m{"uid_from": peer.UID, "type": 2}), "type"},
			{"accept type missing", authed("/Contacts/IO/acceptContacts", m{"uid_from": peer.UID}), "type"},
			// §5
			{"send uid_to text", authed("/Message/Send", m{"uid_to": "abc", "data": "x"}), "uid_to"},
			{"send uid_to missing", authed("/Message/Send", m{"data": "x"}), "uid_to"},
			{"send uid_to self", authed("/Message/Send", m{"uid_to": u.UID, "data": "x"}), "uid_to"},
			{"send data missing", authed("/Message/Send", m{"uid_to": peer.UID}), "data"},
			{"send data number", authed("/Message/Send", m{"uid_to": peer.UID, "data": 5}), "data"},
			{"send data too long", authed("/Message/Send", m{"uid_to": peer.UID, "data": strings.Repeat("x", 4001)}), "data"},
			{"send client_msg_id too long", authed("/Message/Send", m{"uid_to": peer.UID, "data": "x", "client_msg_id": strings.Repeat("k", 65)}), "client_msg_id"},
			{"send client_msg_id newline", authed("/Message/Send", m{"uid_to": peer.UID, "data": "x", "client_msg_id": "a\nb"}), "client_msg_id"},
			{"recv last_id negative", authed("/Message/Recv", m{"last_id": -1}), "last_id"},
			{"recv wait 31", authed("/Message/Recv", m{"wait": 31}), "wait"},
			{"recv wait text", authed("/Message/Recv", m{"wait": "soon"}), "wait"},
			{"recv limit 0", authed("/Message/Recv", m{"limit": 0}), "limit"},
			{"recv limit 501", authed("/Message/Recv", m{"limit": 501}), "limit"},
			// §9
			{"history uid_with missing", authed("/Message/History", nil), "uid_with"},
			{"history uid_with self", authed("/Message/History", m{"uid_with": u.UID}), "uid_with"},
			{"history before_id text", authed("/Message/History", m{"uid_with": peer.UID, "before_id": "x"}), "before_id"},
			{"history limit 101", authed("/Message/History", m{"uid_with": peer.UID, "limit": 101}), "limit"},
			{"read uid_from missing", authed("/Message/Read", m{"last_id": 1}), "uid_from"},
			{"read uid_from self", authed("/Message/Read", m{"uid_from": u.UID, "last_id": 1}), "uid_from"},
			{"read last_id missing", authed("/Message/Read", m{"uid_from": peer.UID}), "last_id"},
			{"read last_id fraction", authed("/Message/Read", m{"uid_from": peer.UID, "last_id": 0.5}), "last_id"},
			// §10
			{"stream last_id text", authed("/Message/Stream", m{"last_id": "x"}), "last_id"},
			{"stream Last-Event-ID", chattest.Req{Path: "/Message/Stream", JSON: u.Creds(nil), Header: map[string]string{"Last-Event-ID": "x"}}, "Last-Event-ID"},
			{"stream GET last_id", chattest.Req{Method: "GET", Path: "/Message/Stream?" + url.Values{"user_id": {itoa(u.UID)}, "user_token": {u.Token}, "last_id": {"-2"}}.Encode()}, "last_id"},
			// §3's upload, its one field.
			{"head_img no file", multipartReq(t, "/user/info/head_img", u), "file"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Do(t, tc.req)
				chattest.Expect(t, r, 400, 1001)
				msg, want := r.Str("msg"), "invalid "+tc.field
				if msg != want && !strings.HasPrefix(msg, want+":") && !strings.HasPrefix(msg, want+" ") {
					t.Fatalf("msg %q, want %q or %q", msg, want, want+": …")
				}
			})
		}
	})
}

// multipartReq is an upload with u's credentials as form fields and no
// file.
func multipartReq(t *testing.T, path string, u chattest.User) chattest.Req {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("uid", itoa(u.UID))
	_ = w.WriteField("access_token", u.Token)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return chattest.Req{Path: path, Body: b.Bytes(), ContentType: w.FormDataContentType()}
}
