package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
)

// The set-up most tests of the sample app share: `sample serve` on a
// fresh database, the secret of the demo API client it made there, and
// users made through the API (or in terminal chats) who are contacts.

var demoSecretRE = regexp.MustCompile(`client_id=demo client_secret=(\S+)`)

// serveDemo runs `sample serve` on dsn, with extra flags, and returns it
// with the secret of the demo API client, which serve makes, and prints,
// on a database that has none.
func serveDemo(t *testing.T, dsn string, extra ...string) (*server, string) {
	t.Helper()
	s := startServe(t, dsn, extra...)
	m := demoSecretRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("serve printed no demo client: %q", s.stdout.String())
	}
	return s, m[1]
}

// person is a user made, and logged in, through the API.
type person struct {
	name string
	uid  int64
	tok  string // access token
}

// serveContacts runs `sample serve` on dsn with two users, aName and
// bName, who are contacts: a asked, b accepted.
func serveContacts(t *testing.T, dsn, aName, bName string) (s *server, secret string, a, b person) {
	t.Helper()
	s, secret = serveDemo(t, dsn)
	a = apiUser(t, s.base, secret, aName)
	b = apiUser(t, s.base, secret, bName)
	befriend(t, s.base, secret, a, b)
	return s, secret, a, b
}

// apiPost posts body to path on base, signed as the demo client, and
// returns the answer, failing the test unless it is a success.
func apiPost(t *testing.T, base, secret, path string, body map[string]any) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(body)
	res, err := http.Post(base+path+"?client_id=demo&api_token="+apiToken(path, secret), "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil || out["error"] != float64(0) {
		t.Fatalf("%s: %d %s", path, res.StatusCode, b)
	}
	return out
}

// apiUser registers name and logs in.
func apiUser(t *testing.T, base, secret, name string) person {
	t.Helper()
	uid := int64(apiPost(t, base, secret, "/user/reg/ajax_reg", map[string]any{"name": name, "passwd": "secret1"})["uid"].(float64))
	tok := apiPost(t, base, secret, "/user/login", map[string]any{"uid": uid, "passwd": "secret1"})["access_token"].(string)
	return person{name: name, uid: uid, tok: tok}
}

// befriend makes a and b contacts: a asks, b accepts.
func befriend(t *testing.T, base, secret string, a, b person) {
	t.Helper()
	apiPost(t, base, secret, "/Contacts/IO/addContacts", map[string]any{"uid": a.uid, "access_token": a.tok, "data": []map[string]any{{"uid": b.uid}}})
	apiPost(t, base, secret, "/Contacts/IO/acceptContacts", map[string]any{"uid": b.uid, "access_token": b.tok, "uid_from": a.uid, "type": 1})
}

// serveChat runs `sample serve` on dsn and returns it, the demo client's
// secret, and the environment that points `sample chat` at it (as the
// other commands, chat takes its flags from there too).
func serveChat(t *testing.T, dsn string) (*server, string, map[string]string) {
	t.Helper()
	s, secret := serveDemo(t, dsn)
	return s, secret, map[string]string{"FIBERCHAT_URL": s.base, "FIBERCHAT_SECRET": secret}
}

// befriendChats makes the users of two terminal chats contacts: asker
// asks with /add, asked accepts with /accept.
func befriendChats(asker, asked *chatRun, askerUID, askedUID string) {
	asker.t.Helper()
	asker.say("/add " + askedUID)
	asker.expect("request sent to " + asked.name)
	asked.say("/accept " + askerUID)
	asked.expect("are contacts now")
}
