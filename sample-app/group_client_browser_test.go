package main

import (
	"fmt"
	"testing"
)

// groupClientScript drives every group function of fiberchat.js in the
// browser, as A (the owner) and B, against the real server; B listens
// over the stream and, with EventSource hidden, over long polls. It
// resolves to the list of checks that failed.
const groupClientScript = `(async () => {
  const A = %d, B = %d;
  const { configure, ChatError } = await import("/static/fiberchat.js");
  const cfg = await (await fetch("/app/config.json")).json();
  const as = (uid, token) => configure({ clientId: cfg.client_id, tokens: cfg.tokens, session: { uid, access_token: token } });
  const a = as(A, %q), b = as(B, %q);
  const failed = [];
  const check = (ok, what, got) => ok || failed.push(what + ": " + JSON.stringify(got));
  const until = async (pred) => {
    for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 50));
    return pred();
  };
  const code = (p) => p.then(() => 0, (e) => (e instanceof ChatError ? e.code : -1));

  const streamed = [], events = [], polled = [];
  let live = false;
  const stream = b.listen(null, (m) => streamed.push(m), { onEvent: (t, d) => events.push({ t, d }), onState: (s) => (live = live || s === "live") });
  const ES = globalThis.EventSource;
  delete globalThis.EventSource;
  const poll = b.listen(null, (m) => polled.push(m));
  globalThis.EventSource = ES;
  check(await until(() => live), "the stream live", null);
  check(poll.mode === "poll", "long polls without EventSource", poll.mode);

  const made = await a.createGroup("Team", [B]);
  const gid = made.gid;
  check(made.num === 1 && made.data[0].uid === B && made.data[0].status === "added", "createGroup", made);
  check(await until(() => events.some((e) => e.t === "group" && e.d.gid === gid && e.d.what === "created" && e.d.uid === A)), "event: group for B", events);
  const sent = await a.sendToGroup(gid, "hello team", "cm-1");
  check((await a.sendToGroup(gid, "hello team", "cm-1")).id === sent.id, "client_msg_id on a group", sent);
  const isIt = (m) => m.id === sent.id && m.gid === gid && m.uid_from === A && m.message === "hello team" && !("uid_to" in m);
  check(await until(() => streamed.some(isIt)), "streamed with gid, no uid_to", streamed);
  check(await until(() => polled.some(isIt)), "polled with gid, no uid_to", polled);
  stream.close();
  poll.close();

  const un = (await b.unread()).data.find((u) => u.gid === gid);
  check(un && un.count === 1 && un.last_id === sent.id, "unread's group entry", un);
  const h = await b.groupHistory(gid, { limit: 10 });
  check(h.data.length === 1 && h.data[0].message === "hello team" && h.data[0].read_by === 0, "groupHistory", h);
  check((await b.markGroupRead(gid, sent.id)).num === 1, "markGroupRead", null);
  const h2 = await a.groupHistory(gid);
  check(h2.data[0].read_by === 1, "read_by after markGroupRead", h2);

  await a.updateGroup(gid, { name: "Team 2" });
  await a.setGroupRole(gid, B, "admin");
  const info = await b.groupInfo(gid);
  check(info.name === "Team 2" && info.data.find((m) => m.uid === B).role === "admin", "updateGroup, setGroupRole, groupInfo", info);
  const mine = (await b.groups()).data.find((g) => g.gid === gid);
  check(mine && mine.role === "admin" && mine.members_num === 2, "groups", mine);
  const again = await a.addGroupMembers(gid, [B]);
  check(again.data[0].status === "already_member", "addGroupMembers", again);
  check((await a.removeGroupMembers(gid, [B])).num === 1, "removeGroupMembers", null);
  check((await code(b.groupInfo(gid))) === 1008, "groupInfo once removed", null);
  await a.leaveGroup(gid);
  check((await code(a.groupInfo(gid))) === 1006, "groupInfo after the last member left", null);
  return failed;
})()`

// TestBrowserGroupClient: fiberchat.js's group functions, each against
// the real server, in a browser.
func TestBrowserGroupClient(t *testing.T) {
	chromium := findChromium(t)
	s, _, a, b := serveContacts(t, tempDSN(t), "Ann", "Ben")

	openBlank(t, chromium, s.base).check(t, fmt.Sprintf(groupClientScript, a.uid, b.uid, a.tok, b.tok))
}
