package main

import (
	"regexp"
	"testing"
)

// idRE finds the id a message line starts with.
var idRE = regexp.MustCompile(`#(\d+) \[`)

// TestChatUpdates: /reply, /edit, /react and /delete in the terminal chat,
// each shown on the other side as it arrives, and in /open's history.
func TestChatUpdates(t *testing.T) {
	t.Parallel()
	_, _, env := serveChat(t, tempDSN(t))
	alice, aliceUID := registerChat(t, env, "alice")
	bob, bobUID := registerChat(t, env, "bob")
	befriendChats(alice, bob, aliceUID, bobUID)

	alice.say("/open " + bobUID)
	alice.expect("no messages yet")
	bob.say("/open " + aliceUID)
	bob.expect("no messages yet")
	alice.say("a first message")
	line := bob.expect("[alice] a first message")
	id := idRE.FindStringSubmatch(line)
	if id == nil {
		t.Fatalf("no id in %q", line)
	}
	bob.say("/reply " + id[1] + " a reply")
	alice.expect("(re #" + id[1] + ") a reply")
	alice.say("/edit " + id[1] + " a first message, edited")
	alice.expect("edited #" + id[1])
	bob.expect("[alice] edited #" + id[1] + ": a first message, edited")
	bob.say("/react " + id[1] + " 👍")
	alice.expect("[bob] reacted 👍 to #" + id[1])
	bob.say("/react " + id[1] + " two words")
	bob.expect("invalid emoji")

	alice.say("/open " + bobUID)
	alice.expect("#" + id[1] + " [alice] a first message, edited (edited)  [👍 1]")
	alice.say("/delete " + id[1])
	alice.expect("deleted #" + id[1])
	bob.expect("[alice] deleted #" + id[1])
	bob.say("/open " + aliceUID)
	bob.expect("#" + id[1] + " [alice] (deleted)")
	bob.say("/edit x y")
	bob.expect("usage: /edit ID TEXT")
}
