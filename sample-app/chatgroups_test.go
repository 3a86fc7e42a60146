package main

import (
	"regexp"
	"strings"
	"testing"
)

var gidRE = regexp.MustCompile(`created group team \((\d+)\)`)

// TestChatGroups drives the /group commands between three users: alice
// makes a group of her contacts bob and carol (who are strangers to each
// other), they talk in it, and alice removes and adds members.
func TestChatGroups(t *testing.T) {
	t.Parallel()
	srv, secret, env := serveChat(t, tempDSN(t))

	alice, aliceUID := registerChat(t, env, "alice")
	bob, bobUID := registerChat(t, env, "bob")
	carol, carolUID := registerChat(t, env, "carol")
	befriendChats(alice, bob, aliceUID, bobUID)
	befriendChats(alice, carol, aliceUID, carolUID)

	alice.say("/help")
	alice.expect("/group open GID")
	alice.say("/groups")
	alice.expect("no groups yet")
	alice.say("/group create team " + bobUID + " " + carolUID + " 99999999")
	g := gidRE.FindStringSubmatch(alice.expect("created group team ("))
	if g == nil {
		t.Fatalf("no gid in %q", alice.stdout.String())
	}
	gid := g[1]
	alice.expect("added bob (" + bobUID + ")")
	alice.expect("added carol (" + carolUID + ")")
	alice.expect("not added: 99999999 (no such user, or not your contact)")
	alice.say("/groups")
	alice.expect("  " + gid + "  team  (3 members, you are owner)")

	alice.say("/group open " + gid)
	alice.expect("-- conversation in group team (" + gid + ") --")
	alice.expect("no messages yet")
	bob.say("/group open " + gid)
	bob.expect("-- conversation in group team (" + gid + ") --")
	alice.say("hello team")
	bob.expect("[alice @ team] hello team")
	carol.expect("[alice @ team] hello team")
	bob.say("hi from bob")
	alice.expect("[bob @ team] hi from bob")
	carol.expect("[bob @ team] hi from bob") // a stranger to carol: named by the group

	// carol has not opened the group: both are unread until she does.
	carol.say("/groups")
	if line := carol.expect("  " + gid + "  team"); !strings.HasSuffix(line, "(2 unread)") {
		t.Errorf("carol's /groups shows %q, want team with 2 unread", line)
	}
	carol.say("/group open " + gid)
	carol.expect("[alice] hello team")
	carol.expect("[bob] hi from bob")
	carol.say("/groups")
	if line := carol.expect("  " + gid + "  team"); strings.Contains(line, "unread") {
		t.Errorf("after /group open, carol's /groups shows %q, want nothing unread", line)
	}
	carol.say("/group info " + gid)
	carol.expect("-- group team (" + gid + "): 3 members --")
	carol.expect("  " + aliceUID + "  alice  owner")
	carol.say("/history")
	carol.expect("no older messages")

	alice.say("/group remove " + gid + " " + carolUID)
	alice.expect("removed 1 of 1 from group team (" + gid + ")")
	carol.say("still here?")
	carol.expect("not sent: ")
	bob.say("/group leave " + gid)
	bob.expect("you left group team (" + gid + ")")
	bob.say("anyone?")
	bob.expect("no conversation open")
	alice.say("/group add " + gid + " " + bobUID + " " + carolUID)
	alice.expect("group team (" + gid + "):")
	alice.expect("  added bob (" + bobUID + ")")
	alice.expect("  added carol (" + carolUID + ")")

	// Back with --uid: the group's backlog is counted, not printed.
	alice.say("/quit")
	if code := alice.exit(); code != exitOK {
		t.Fatalf("alice's /quit: exit status %d, stderr %q", code, alice.stderr.String())
	}
	bob.say("/group open " + gid)
	bob.expect("conversation in group team")
	bob.say("while you were away")
	carol.expect("[bob @ team] while you were away")
	waitUnread(t, apiClient(t, srv.base, secret, aliceUID, "alice-pw"), 1)
	alice = startChat(t, "alice again", env, "--uid", aliceUID, "--password", "alice-pw")
	alice.expect("logged in as alice")
	alice.say("/groups")
	if line := alice.expect("  " + gid + "  team"); !strings.HasSuffix(line, "(1 unread)") {
		t.Errorf("alice's /groups shows %q, want team with 1 unread", line)
	}
	if out := alice.stdout.String(); strings.Contains(out, "[bob @ team]") {
		t.Errorf("alice was shown the backlog at login:\n%s", out)
	}
	carol.say("live again")
	alice.expect("[carol @ team] live again")

	for _, tt := range []struct{ line, want string }{
		{"/group", "usage: /group create NAME"},
		{"/group open x", "usage: /group open GID"},
		{"/group add " + gid, "usage: /group add GID UID..."},
		{"/group leave " + gid + " " + bobUID, "usage: /group leave GID"},
		{"/group create", "usage: /group create NAME [UID...]"},
		{"/group open 29999999", "no such group"},
	} {
		alice.say(tt.line)
		alice.expect(tt.want)
	}
}
