package main

import (
	"path/filepath"
	"regexp"
	"testing"
)

var safetyRE = regexp.MustCompile(`safety number with \S+ \(\d+\): ((?:\d{5} ){5}\d{5})`)

// TestChatE2EE: two terminals with --e2ee talk encrypted (a lock on each
// message, the text readable on both sides), and /verify shows both the
// same safety number.
func TestChatE2EE(t *testing.T) {
	t.Parallel()
	forEachDatabase(t, runChatE2EE)
}

func runChatE2EE(t *testing.T, dsn string) {
	_, _, env := serveChat(t, dsn)
	dir := t.TempDir()
	start := func(name string) (*chatRun, string) {
		return registerChat(t, env, name, "--e2ee", "--device", filepath.Join(dir, name+".json"))
	}
	alice, aliceUID := start("alice")
	bob, bobUID := start("bob")
	befriendChats(alice, bob, aliceUID, bobUID)

	alice.say("/open " + bobUID)
	alice.expect("conversation with bob")
	alice.say("our secret")
	bob.expect("[alice] 🔒 our secret")
	bob.say("/open " + aliceUID)
	bob.expect("[alice] 🔒 our secret") // History, decrypted

	alice.say("/verify " + bobUID)
	a := safetyRE.FindStringSubmatch(alice.expect("safety number with"))
	bob.say("/verify " + aliceUID)
	b := safetyRE.FindStringSubmatch(bob.expect("safety number with"))
	if a == nil || b == nil || a[1] != b[1] {
		t.Fatalf("safety numbers %q and %q, want the same", a, b)
	}

	// Bob on a new device: alice is warned, and her safety number with
	// him changes.
	bob2 := startChat(t, "bob2", env, "--uid", bobUID, "--password", "bob-pw", "--e2ee", "--device", filepath.Join(dir, "bob-2.json"))
	bob2.expect("logged in as bob")
	alice.expect("⚠ bob's device keys changed")
	alice.say("/verify " + bobUID)
	if c := safetyRE.FindStringSubmatch(alice.expect("safety number with")); c == nil || c[1] == a[1] {
		t.Fatalf("safety number after bob's new device %q, want a new one (was %s)", c, a[1])
	}
}
