// The fiberchat web chat page. It reads its settings from ./config.json,
// written by the server that serves the page:
//
//   {"base": "/chat", "client_id": "web", "tokens": {day: {route: token}},
//    "session_url": "/chat-token", "uid": 10000001}
//
// base is the module's mount prefix, tokens what module.BrowserTokens
// returns (never the client secret). session_url and uid are set by a
// host that signs its users in itself: the page then takes its chat
// session from session_url (provisioned and issued by the host) instead
// of asking for a password.
//
// fiberchat.js is loaded from the module itself (GET <base>/static/fiberchat.js),
// so the page always speaks the server's own version of the client.

import { setupNotifications, subscribePush, unsubscribePush, noticeMessage, missedCount, conversationFromURL } from "./notify.js";

// ChatError and configure come from fiberchat.js once config.json named
// the mount; until then a failure is a PageError.
let ChatError = class PageError extends Error {
  constructor(status, code, msg) {
    super(msg);
    this.status = status;
    this.code = code;
    this.msg = msg;
  }
};
let configure;
// The end-to-end encryption functions of fiberchat.js (API.md §15).
let e2ee = {};
// isUpdate and applyUpdate of fiberchat.js (API.md §13).
let rich = {};

const $ = (id) => document.getElementById(id);

// Sentences for the contract's error codes (API.md §2); the server's msg
// is added when it says more.
const sentences = {
  0: "Cannot reach the chat server. Check your connection and try again.",
  1001: "The server could not accept that.",
  1002: "This page's access to the chat was refused. Reload the page.",
  1004: "Your session has ended. Please log in again.",
  1005: "Wrong user id, handle or password.",
  1006: "Not found.",
  1007: "That is already done.",
  1008: "That is not allowed.",
  1009: "That is too large.",
  1010: "Too many attempts. Wait a little and try again.",
  1011: "That file is not a picture the chat accepts (PNG, JPEG, GIF or WebP).",
  1500: "Something went wrong on the server. Try again.",
  1503: "The chat is unavailable for a moment. Try again shortly.",
};

// describe turns any error into words for a person.
function describe(err) {
  if (!err || typeof err.code !== "number" || typeof err.status !== "number") return "Something went wrong in this page: " + (err && err.message ? err.message : err);
  let text = sentences[err.code] || sentences[err.status >= 500 ? 1500 : 0];
  if (err.code === 0 && err.status > 0) text = `The server answered ${err.status}.`;
  if (err.code === 1010 && err.retryAfter) text = `Too many attempts. Try again in ${err.retryAfter} seconds.`;
  const msg = (err.msg || "").trim();
  if (err.code === 1007 && msg.includes("handle")) return "That handle is taken. Choose another.";
  if (msg && err.code !== 1005 && !msg.startsWith("network error")) text += ` (${msg})`;
  return text;
}

function show(el, text, cls) {
  el.textContent = text || "";
  el.hidden = !text;
  if (cls !== undefined) el.className = cls;
}

function avatar(el, name, img, uid) {
  el.textContent = "";
  el.style.backgroundColor = `hsl(${(Number(uid) * 47) % 360} 45% 52%)`;
  if (img) {
    const i = document.createElement("img");
    i.src = img;
    i.alt = "";
    el.append(i);
  } else {
    el.textContent = (name || "?").trim().charAt(0).toUpperCase() || "?";
  }
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
function when(unix) {
  const d = new Date(unix * 1000);
  const today = new Date().toDateString() === d.toDateString();
  return today ? timeFmt.format(d) : `${dayFmt.format(d)} ${timeFmt.format(d)}`;
}

// State of the page.
let cfg;
let chat;
let keyPrefix = "fiberchat:";
let me = null; // {uid, name, head_img, handle}
let contacts = new Map(); // uid → {uid, name, head_img}
let groups = new Map(); // gid → {gid, name, head_img, role, members_num, last_id}
let unread = new Map(); // uid → count
let groupUnread = new Map(); // gid → count
// The newest message id counted in unread and groupUnread, by uid and by
// gid: an Unread answer may count a message whose stream event comes
// after it, which must not count it again.
const countedUpTo = { uid: new Map(), gid: new Map() };
let people = new Map(); // uid → {uid, name, head_img}: who wrote in a group
// conv is the open conversation: a contact's {uid, gid: 0, name,
// head_img} or a group's {uid: 0, gid, name, head_img, role, members}.
let conv = null;
let oldestId = 0;
let listener = null;
let mode = "";
let lostAt = 0;
let syncTimer = 0;

const store = {
  get(k) {
    try {
      return JSON.parse(localStorage.getItem(keyPrefix + k));
    } catch {
      return null;
    }
  },
  set(k, v) {
    if (v == null) localStorage.removeItem(keyPrefix + k);
    else localStorage.setItem(keyPrefix + k, JSON.stringify(v));
  },
};

async function loadConfig() {
  const res = await fetch("config.json", { cache: "no-store", credentials: "same-origin" });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok || !body || body.error) {
    throw new ChatError(res.status, body && body.error ? body.error : 0, body && body.msg ? body.msg : "the page's settings could not be loaded");
  }
  return body;
}

// hostSession asks the host for a chat session (host mode only).
async function hostSession() {
  const res = await fetch(cfg.session_url, { cache: "no-store", credentials: "same-origin" });
  if (!res.ok) throw new ChatError(res.status, 1004, "the site did not give a chat session: sign in to the site again");
  const s = await res.json();
  return { uid: s.uid, access_token: s.access_token, expire_time: s.expire_time };
}

async function start() {
  try {
    cfg = await loadConfig();
  } catch (e) {
    $("loading").textContent = "This chat cannot start: " + describe(e);
    return;
  }
  try {
    const lib = await import(`${cfg.base || ""}/static/fiberchat.js`);
    ({ configure, ChatError } = lib);
    e2ee = lib;
    rich = lib;
  } catch (e) {
    $("loading").textContent = "This chat cannot start: its client script did not load (" + e.message + ").";
    return;
  }
  keyPrefix = `fiberchat:${cfg.client_id}:${cfg.base || ""}:`;
  chat = configure({
    base: cfg.base || "",
    clientId: cfg.client_id,
    tokens: async () => (await loadConfig()).tokens,
    session: store.get("session"),
    onSession: (s) => store.set("session", s),
  });
  if (cfg.session_url) {
    $("logout").hidden = true;
    const saved = chat.session;
    if (!saved || saved.uid !== cfg.uid) chat.setSession(null);
  }
  bind();
  bindGroups();
  bindFinish();
  bindNotifications();
  await enter();
}

// enter shows the chat when a session works, the login form otherwise.
async function enter(note) {
  $("loading").hidden = true;
  if (!chat.session && cfg.session_url) {
    try {
      const s = await hostSession();
      chat.setSession(s);
      store.set("session", s);
    } catch (e) {
      $("loading").hidden = false;
      $("loading").textContent = describe(e);
      return;
    }
  }
  if (!chat.session) return showAuth(note);
  try {
    const info = await chat.info();
    me = { uid: info.uid, name: info.name, head_img: info.head_img, handle: info.handle || "", discoverable: info.discoverable !== 0 };
  } catch (e) {
    if (e.code === 1004) {
      store.set("open", null);
      if (cfg.session_url) return enter();
      return showAuth(describe(e));
    }
    $("loading").hidden = false;
    $("loading").textContent = describe(e);
    setTimeout(() => enter(), 5000);
    return;
  }
  device = await loadDevice(me.uid);
  $("auth").hidden = true;
  $("chat").hidden = false;
  renderMe();
  await Promise.all([loadContacts(), loadGroups(), loadRequests(), loadUnread(), loadBlocked()]);
  const clicked = conversationFromURL();
  const open = clicked ? clicked.gid ? clicked : clicked.uid : store.get("open");
  if (open && open.gid) await openGroup(open.gid);
  else if (open) await openConversation(open);
  listen();
  subscribePush();
}

function showAuth(note) {
  stopListening();
  me = null;
  conv = null;
  $("chat").hidden = true;
  $("auth").hidden = false;
  tab("login");
  show($("auth-error"), note || "");
  $("login-uid").value = $("login-uid").value || (store.get("last_uid") || "");
}

function renderMe() {
  $("me-name").textContent = me.name;
  $("me-uid").textContent = me.uid;
  $("me-handle").textContent = me.handle ? ` · @${me.handle}` : "";
  avatar($("me-avatar"), me.name, me.head_img, me.uid);
  document.title = `${me.name} · fiberchat`;
}

// sessionEnded is where every 1004 leads: back to the login form (or a
// new session from the host) with the reason in words.
function sessionEnded(err) {
  stopListening();
  store.set("open", null);
  if (cfg.session_url) {
    chat.setSession(null);
    enter();
    return;
  }
  showAuth(describe(err));
}

// guard runs fn and shows its error in el, in words.
async function guard(el, fn) {
  show(el, "");
  try {
    return await fn();
  } catch (e) {
    if (e && e.code === 1004) {
      sessionEnded(e);
      return undefined;
    }
    show(el, describe(e));
    return undefined;
  }
}

// Contacts, requests and blocked users.

async function loadContacts() {
  await guard($("side-error"), async () => {
    const r = await chat.contacts();
    contacts = new Map((r.data || []).map((c) => [c.uid, c]));
    renderContacts();
    contactsLoaded();
  });
}

function renderContacts() {
  const ul = $("contacts");
  ul.textContent = "";
  for (const c of contacts.values()) {
    const li = document.createElement("li");
    li.dataset.uid = c.uid;
    if (conv && conv.uid === c.uid) li.className = "active";
    const { av, who } = rowParts(c, c.name, `id ${c.uid}` + seenText(c));
    const dot = document.createElement("span");
    dot.className = "presence" + (c.online ? " online" : "");
    dot.title = c.online ? "online" : "offline";
    li.append(dot, av, who);
    addPreview(li, who, "u" + c.uid);
    addBadge(li, unread.get(c.uid) || 0);
    li.addEventListener("click", () => openConversation(c.uid));
    ul.append(li);
  }
  $("no-contacts").hidden = contacts.size > 0;
  renderTitle();
}

// seenText is what a contact's line says of their presence besides the
// dot: when they were last seen, if offline and known.
function seenText(c) {
  if (c.online || !c.last_seen) return "";
  return " · last seen " + new Date(c.last_seen * 1000).toLocaleString();
}

// onPresence keeps a contact's presence as the stream tells it.
function onPresence(data) {
  const c = contacts.get(data.uid);
  if (!c) return;
  c.online = data.online;
  c.last_seen = data.last_seen;
  renderContacts();
}

// Typing: "typing…" in the open conversation's header, for a few seconds
// after the last notice (the server relays one every 3 s while someone
// types), or until their message arrives.
let typingTimer = 0;
function onTyping(data) {
  if (!conv || (data.gid || 0) !== (conv.gid || 0) || (!data.gid && data.uid !== conv.uid)) return;
  const t = $("typing");
  let who = "";
  if (data.gid) {
    const m = (conv.members || []).find((p) => p.uid === data.uid);
    who = (m ? m.name : `id ${data.uid}`) + " is ";
  }
  t.textContent = who + "typing…";
  t.dataset.uid = data.uid;
  t.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(hideTyping, 4000);
}

function hideTyping() {
  clearTimeout(typingTimer);
  $("typing").hidden = true;
}

// sendTyping tells the open conversation that I type; fiberchat.js keeps
// it to one every 2 s.
function sendTyping() {
  if (!conv || !$("text").value) return;
  chat.typing(conv.gid ? { gid: conv.gid } : { uid: conv.uid }).catch(() => {});
}

// addBadge shows n unread on a list item, when there are any.
function addBadge(li, n) {
  if (n <= 0) return;
  const b = document.createElement("span");
  b.className = "badge";
  b.textContent = n > 99 ? "99+" : String(n);
  b.title = `${n} unread`;
  li.append(b);
}

function renderTitle() {
  const sum = (m, keep) => [...m].reduce((a, [k, n]) => a + (keep(k) ? n : 0), 0);
  // A group I was taken out of may linger in groupUnread until the next
  // Unread: it no longer counts.
  const total = sum(unread, () => true) + sum(groupUnread, (gid) => groups.has(gid)) + missedCount();
  if (me) document.title = (total ? `(${total}) ` : "") + `${me.name} · fiberchat`;
}

async function loadRequests() {
  await guard($("side-error"), async () => {
    const r = await chat.requests();
    const ul = $("requests");
    ul.textContent = "";
    for (const q of r.data || []) {
      const li = document.createElement("li");
      li.dataset.uid = q.uid;
      const { av, who } = rowParts(q, q.name, `wants to chat · id ${q.uid}`);
      const yes = document.createElement("button");
      yes.className = "primary accept";
      yes.textContent = "Accept";
      yes.addEventListener("click", () => answer(q.uid, true));
      const no = document.createElement("button");
      no.className = "refuse";
      no.textContent = "Refuse";
      no.addEventListener("click", () => answer(q.uid, false));
      li.append(av, who, yes, no);
      ul.append(li);
    }
    $("requests-box").hidden = !(r.data && r.data.length);
  });
}

async function answer(uid, accept) {
  await guard($("side-error"), async () => {
    await chat.answerRequest(uid, accept);
    show($("side-note"), accept ? "Request accepted: you can talk now." : "Request refused.", "note ok");
    await Promise.all([loadRequests(), loadContacts()]);
  });
}

async function loadBlocked() {
  await guard($("side-error"), async () => {
    const r = await chat.blocked();
    const ul = $("blocked");
    ul.textContent = "";
    for (const b of r.data || []) ul.append(blockedRow(b));
    $("blocked-box").hidden = !(r.data && r.data.length);
  });
}

// countedLocally goes up with each message counted as it arrives: an
// Unread answer asked for before one of them may not count it, and would
// lower the badge (and the divider of the next open) under the truth.
let countedLocally = 0;

async function loadUnread() {
  await guard($("side-error"), async () => {
    const asked = countedLocally;
    const r = await chat.unread();
    if (asked !== countedLocally) {
      refreshUnreadSoon(); // a message came meanwhile: ask again
      return;
    }
    // Unread lists senders ({uid_from, …}) and groups ({gid, …}).
    unread = new Map();
    groupUnread = new Map();
    for (const u of r.data || []) {
      if (u.gid) groupUnread.set(u.gid, u.count);
      else unread.set(u.uid_from, u.count);
      countUpTo(u.gid ? countedUpTo.gid : countedUpTo.uid, u.gid || u.uid_from, u.last_id);
    }
    forgetUnread(conv);
    renderContacts();
    renderGroups();
  });
}

// countUpTo records that the counts of key in seen include message id,
// and reports whether they did not before.
function countUpTo(seen, key, id) {
  if (!id || id <= (seen.get(key) || 0)) return false;
  seen.set(key, id);
  return true;
}

// forgetUnread drops the badge of conversation c (the open one).
function forgetUnread(c) {
  if (c && c.gid) groupUnread.delete(c.gid);
  else if (c) unread.delete(c.uid);
}

let unreadTimer = 0;
function refreshUnreadSoon(withGroups) {
  clearTimeout(unreadTimer);
  unreadTimer = setTimeout(() => {
    loadUnread();
    // A group's new message moves it up the list (newest activity first).
    if (withGroups) loadGroups();
  }, 300);
}

const addStatus = {
  requested: "Request sent. You can talk once they accept.",
  pending: "You have already asked; waiting for their answer.",
  accepted: "They had asked you already: you are now contacts.",
  already_contact: "You are already contacts.",
  not_found: "There is no user with that id.",
  self: "That is your own id.",
};

// addContact asks a user by id at once; anything else (a handle, with or
// without its @, or part of a name) is searched, and the results are
// listed with an Add button each.
async function addContact(e) {
  e.preventDefault();
  show($("side-note"), "");
  const raw = $("add-uid").value.trim();
  if (/^\d{1,19}$/.test(raw)) {
    if (await askContact(raw)) $("add-uid").value = "";
    return;
  }
  const q = raw.replace(/^@/, "");
  if ([...q].length < 2) {
    show($("side-error"), "Type an id, or at least 2 letters of a handle or name.");
    return;
  }
  await guard($("side-error"), async () => {
    const r = await chat.search(q);
    renderSearch(r.data || [], q);
  });
}

// askContact asks uid to be a contact and says what happened; true when
// the request went (or made us contacts).
async function askContact(uid) {
  let ok = false;
  await guard($("side-error"), async () => {
    const r = await chat.addContacts([uid]);
    const st = r.data && r.data[0] ? r.data[0].status : "";
    const bad = st === "not_found" || st === "self";
    show(bad ? $("side-error") : $("side-note"), addStatus[st] || "Done.", bad ? "error" : "note ok");
    ok = !bad;
    if (st === "accepted") await loadContacts();
  });
  return ok;
}

// renderSearch lists what a search found: who they are, and Add (or that
// they are a contact already).
function renderSearch(found, q) {
  const ul = $("search-results");
  ul.textContent = "";
  for (const p of found) {
    const li = document.createElement("li");
    li.dataset.uid = p.uid;
    const { av, who } = rowParts(p, p.name, p.handle ? `@${p.handle} · id ${p.uid}` : `id ${p.uid}`);
    const add = document.createElement("button");
    add.className = "primary add";
    add.textContent = contacts.has(p.uid) ? "Contact" : "Add";
    add.disabled = contacts.has(p.uid);
    add.addEventListener("click", async () => {
      if (await askContact(p.uid)) {
        add.textContent = "Asked";
        add.disabled = true;
      }
    });
    li.append(av, who, add);
    ul.append(li);
  }
  $("search-box").hidden = false;
  if (!found.length) show($("side-note"), `No one found for “${q}”.`, "note");
}

// End-to-end encryption (API.md §15). This browser is one device of the
// user: its X25519 private key is made non-extractable and kept in
// IndexedDB (a CryptoKey is stored as it is, never as bytes), its public
// key published at each start. A conversation with a contact who
// published a key is encrypted (a lock in its header, with the safety
// number to compare); without Web Crypto's X25519 or IndexedDB, device
// stays null and the page sends plain text.
let device = null;

function deviceStore(mode, fn) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("fiberchat-e2ee", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("devices");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const req = fn(open.result.transaction("devices", mode).objectStore("devices"));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    };
  });
}

async function loadDevice(uid) {
  const key = keyPrefix + uid;
  try {
    let d = await deviceStore("readonly", (st) => st.get(key));
    if (!d) {
      d = await e2ee.newDevice("web-" + Math.random().toString(36).slice(2, 10));
      await deviceStore("readwrite", (st) => st.put(d, key));
    }
    await chat.publishKey(d);
    return d;
  } catch {
    return null;
  }
}

// readable decrypts an encrypted message in place: m.message becomes its
// text, or, when this device cannot read it, stays empty with
// m.undecryptable set (never ciphertext shown as text).
async function readable(m) {
  if (!m.enc) return m;
  m.locked = true;
  try {
    m.message = await chat.decrypt(m, device);
  } catch {
    m.message = "";
    m.undecryptable = true;
  }
  return m;
}

// checkKeys finds whether conversation c (1:1) is encrypted and shows
// its safety number; changed says the contact's keys just changed.
async function checkKeys(c, changed) {
  if (!device || c.gid) return;
  try {
    const r = await chat.deviceKeys([c.uid, me.uid]);
    c.encrypted = r.data.some((k) => k.uid === c.uid);
    c.safety = c.encrypted ? await e2ee.safetyNumber(r.data) : "";
  } catch {
    return;
  }
  if (conv !== c) return;
  $("peer-lock").hidden = !c.encrypted;
  $("peer-safety").textContent = c.safety;
  if (changed) $("peer-keys-changed").hidden = false;
}

// The conversation: a contact's or a group's, through the few calls that
// differ between the two.

const talk = {
  history: (c, o) => (c.gid ? chat.groupHistory(c.gid, o) : chat.history(c.uid, o)),
  send: (c, text, id, replyTo) =>
    replyTo
      ? sendReplyTo(c, text, id, replyTo)
      : c.gid
        ? chat.sendToGroup(c.gid, text, id)
        : c.encrypted
          ? chat.sendEncrypted(c.uid, text, device, id)
          : chat.send(c.uid, text, id),
  read: (c, last) => (c.gid ? chat.markGroupRead(c.gid, last) : chat.markRead(c.uid, last)),
};

// isRead tells a tick: a 1:1 message's recipient read it, or someone in a
// group did.
const isRead = (m) => (m.gid ? m.read_by > 0 : !!m.read);

function messageItem(m) {
  const mine = m.uid_from === me.uid;
  const read = mine && isRead(m);
  const li = document.createElement("li");
  li.className = "msg " + (mine ? "mine" : "theirs") + (read ? " read" : "");
  if (m.id) li.dataset.id = m.id;
  if (m.time) li.dataset.time = m.time;
  if (m.gid && !mine) li.append(senderLine(m.uid_from));
  const text = document.createElement("span");
  text.className = "text" + (m.undecryptable ? " undecryptable" : "");
  text.textContent = m.undecryptable ? "This message cannot be decrypted on this device." : m.message;

  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = m.time ? when(m.time) : "sending…";
  if (m.locked) {
    const lock = document.createElement("span");
    lock.className = "lock";
    lock.title = "End-to-end encrypted";
    lock.textContent = "🔒";
    meta.prepend(lock);
  }
  if (mine && m.time) {
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.textContent = read ? "✓✓" : "✓";
    tick.title = read ? (m.gid ? `Read by ${m.read_by}` : "Read") : "Sent";
    meta.append(tick);
  }
  // A file's card, then its caption; deleted, the text says so alone.
  if (m.kind === "file" && !m.deleted) li.append(fileView(m));
  text.hidden = m.kind === "file" && !m.message && !m.deleted;
  li.append(text, meta);
  decorateRich(li, m, text, meta);
  return li;
}

// Files (API.md §13): images shown as their thumbnail, linking to the
// whole image; other files as a card that downloads them. A message's
// URLs are the ones its record carried, fresh in every answer.

function fileView(m) {
  const f = m.file;
  if (!f) {
    const gone = document.createElement("span");
    gone.className = "file-card gone";
    gone.textContent = m.upload ? `📎 ${m.upload.name} — uploading…` : "📎 File deleted";
    return gone;
  }
  const link = document.createElement("a");
  link.href = chat.fileURL(f.url);
  link.rel = "noopener";
  if (f.thumb_url) {
    link.target = "_blank";
    link.className = "file-image";
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = f.name;
    img.src = chat.fileURL(f.thumb_url);
    link.append(img);
    return link;
  }
  link.className = "file-card";
  link.download = f.name;
  link.textContent = `📎 ${f.name} · ${fileSize(f.size)}`;
  return link;
}

function fileSize(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

// sendFiles uploads each file and sends it to the open conversation, as
// send does text: a pending item first, replaced once sent.
async function sendFiles(files) {
  const c = conv;
  if (!c) return;
  for (const file of files) {
    const m = { uid_from: me.uid, kind: "file", message: "", upload: { name: file.name || "file" }, time: 0, read: false, read_by: 0 };
    if (c.gid) m.gid = c.gid;
    else m.uid_to = c.uid;
    const li = messageItem(m);
    li.classList.add("pending");
    $("messages").append(li);
    toBottom();
    await deliverFile(li, m, c, file);
  }
}

async function deliverFile(li, m, c, file) {
  show($("conv-error"), "");
  try {
    m.file = await chat.uploadFile(file);
    const r = c.gid ? await chat.sendFileToGroup(c.gid, m.file.file_id) : await chat.sendFile(c.uid, m.file.file_id);
    m.id = r.id;
    m.time = r.time;
    if ($("messages").querySelector(`[data-id="${r.id}"]`)) li.remove();
    else li.replaceWith(messageItem(m));
    if (!oldestId) oldestId = r.id;
  } catch (err) {
    if (err && err.code === 1004) return sessionEnded(err);
    li.classList.remove("pending");
    li.classList.add("failed");
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = `Not sent: ${describe(err)}`;
    li.append(why);
  }
}

// bindFiles sends what is dropped on the conversation, pasted into the
// message box, or picked with the 📎 button.
function bindFiles() {
  const area = $("conv-open");
  area.addEventListener("dragover", (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) {
      e.preventDefault();
      area.classList.add("dropping");
    }
  });
  area.addEventListener("dragleave", () => area.classList.remove("dropping"));
  area.addEventListener("drop", (e) => {
    area.classList.remove("dropping");
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    sendFiles([...e.dataTransfer.files]);
  });
  $("text").addEventListener("paste", (e) => {
    const files = e.clipboardData ? [...e.clipboardData.files] : [];
    if (!files.length) return;
    e.preventDefault();
    sendFiles(files);
  });
  $("attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", () => {
    const files = [...$("file-input").files];
    $("file-input").value = "";
    sendFiles(files);
  });
}

// senderLine is who wrote a group's message: avatar and name, from people
// (filled in by learnPeople when the sender was not known yet).
function senderLine(uid) {
  const from = document.createElement("span");
  from.className = "from";
  from.dataset.sender = uid;
  const av = document.createElement("span");
  av.className = "avatar small";
  const name = document.createElement("span");
  name.className = "name";
  from.append(av, name);
  fillSender(from);
  return from;
}

function fillSender(el) {
  const uid = Number(el.dataset.sender);
  const p = people.get(uid) || contacts.get(uid);
  el.querySelector(".name").textContent = p ? p.name : `id ${uid}`;
  avatar(el.querySelector(".avatar"), p ? p.name : "", p ? p.head_img : "", uid);
}

// learnPeople looks up the senders shown in the open group that are
// neither members nor contacts (those who left), and names them.
async function learnPeople() {
  const shown = [...$("messages").querySelectorAll(".from[data-sender]")];
  const unknown = [...new Set(shown.map((e) => Number(e.dataset.sender)))].filter((uid) => !people.has(uid) && !contacts.has(uid));
  if (unknown.length) {
    try {
      const r = await chat.contactsInfo(unknown.slice(0, 100));
      for (const p of r.data || []) people.set(p.uid, p);
    } catch {
      // Their ids stay shown instead of names.
    }
  }
  for (const el of $("messages").querySelectorAll(".from[data-sender]")) fillSender(el);
}

function setRead(li, read, title = "Read") {
  if (!li.classList.contains("mine") || !read) return;
  li.classList.add("read");
  const tick = li.querySelector(".tick");
  if (tick) {
    tick.textContent = "✓✓";
    tick.title = title;
  }
}

const scroller = () => $("scroller");
const atBottom = () => {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < 60;
};
const toBottom = () => {
  const s = scroller();
  s.scrollTop = s.scrollHeight;
};

async function openConversation(uid) {
  uid = Number(uid);
  let p = contacts.get(uid);
  if (!p) {
    const r = await guard($("side-error"), () => chat.contactsInfo([uid]));
    p = r && r.data && r.data[0];
    if (!p) {
      store.set("open", null);
      return;
    }
  }
  await showConversation({ uid, gid: 0, name: p.name, head_img: p.head_img }, uid);
}

// groupGone tells an error that means I am not (or no longer) in a
// group, or that it is no more.
const groupGone = (e) => e && (e.code === 1006 || e.code === 1008);

async function openGroup(gid) {
  gid = Number(gid);
  let info;
  try {
    info = await chat.groupInfo(gid);
  } catch (e) {
    if (e && e.code === 1004) return sessionEnded(e);
    store.set("open", null);
    if (groupGone(e)) loadGroups();
    else show($("side-error"), describe(e));
    return;
  }
  const c = { uid: 0, gid };
  applyGroupInfo(c, info);
  await showConversation(c, { gid });
}

// applyGroupInfo keeps what /Group/info said in conversation c.
function applyGroupInfo(c, info) {
  c.name = info.name;
  c.head_img = info.head_img;
  c.members = info.data || [];
  const mine = c.members.find((m) => m.uid === me.uid);
  c.role = mine ? mine.role : "member";
  for (const m of c.members) people.set(m.uid, m);
}

// showConversation opens c (stored as stored, for a reload).
async function showConversation(c, stored) {
  conv = c;
  store.set("open", stored);
  document.body.classList.add("conv-open");
  $("conv-empty").hidden = true;
  $("conv-open").hidden = false;
  $("members-box").hidden = true;
  renderHeader();
  $("peer-lock").hidden = true;
  $("peer-keys-changed").hidden = true;
  await checkKeys(c, false);
  $("messages").textContent = "";
  $("older").hidden = true;
  show($("conv-error"), "");
  oldestId = 0;
  c.unreadAtOpen = c.gid ? groupUnread.get(c.gid) || 0 : unread.get(c.uid) || 0;
  forgetUnread(c);
  renderContacts();
  renderGroups();
  await loadPage();
  placeUnreadDivider(c);
  toBottom();
  markRead();
  $("text").focus();
}

function renderHeader() {
  const g = conv.gid > 0;
  hideTyping();
  $("peer-name").textContent = conv.name;
  $("peer-uid").textContent = g ? "" : conv.uid;
  $("peer-sub").hidden = g;
  $("group-sub").hidden = !g;
  avatar($("peer-avatar"), conv.name, conv.head_img, conv.gid || conv.uid);
  $("peer-avatar").classList.toggle("group", g);
  $("peer-delete").hidden = g || !contacts.has(conv.uid);
  $("peer-block").hidden = g;
  $("group-members-toggle").hidden = !g;
  $("group-leave").hidden = !g;
  if (!g) return;
  const n = conv.members.length;
  $("group-sub").textContent = `${n} member${n === 1 ? "" : "s"}` + (conv.role !== "member" ? ` · you are ${conv.role}` : "");
  renderMembers();
}

// loadPage puts the page of history before oldestId (the newest page
// when 0) above what is shown, keeping the view where it was.
async function loadPage() {
  const c = conv;
  const r = await guard($("conv-error"), () => talk.history(c, { before_id: oldestId || undefined, limit: 30 }));
  if (!r) return;
  await Promise.all((r.data || []).map(readable));
  if (conv !== c) return;
  const list = $("messages");
  const s = scroller();
  const fromBottom = s.scrollHeight - s.scrollTop;
  const frag = document.createDocumentFragment();
  for (const m of (r.data || []).slice().reverse()) {
    if (list.querySelector(`[data-id="${m.id}"]`)) continue;
    frag.append(messageItem(m));
    if (!oldestId || m.id < oldestId) oldestId = m.id;
  }
  list.prepend(frag);
  fillQuotes();
  s.scrollTop = s.scrollHeight - fromBottom;
  $("older").hidden = !r.more;
  if (c.gid) learnPeople();
}

// syncNewest re-reads the newest page: messages missed while the
// connection was down, and read ticks when no stream tells them.
async function syncNewest() {
  const c = conv;
  if (!c) return;
  let r;
  try {
    r = await talk.history(c, { limit: 30 });
  } catch (e) {
    if (e && e.code === 1004) sessionEnded(e);
    return;
  }
  await Promise.all((r.data || []).map(readable));
  if (conv !== c) return;
  const list = $("messages");
  const stick = atBottom();
  for (const m of (r.data || []).slice().reverse()) {
    const li = list.querySelector(`[data-id="${m.id}"]`);
    if (li) setRead(li, isRead(m), m.gid ? `Read by ${m.read_by}` : "Read");
    else appendMessage(m);
  }
  if (stick) toBottom();
  if (c.gid) learnPeople();
}

// appendMessage adds a message at its place by id (live messages arrive
// in id order, so that is the end but for a rare race with a send).
function appendMessage(m) {
  const list = $("messages");
  // Older than the loaded page: "Older messages" will bring it in place.
  if (list.querySelector(`[data-id="${m.id}"]`) || (oldestId && m.id < oldestId)) return;
  const li = messageItem(m);
  const later = [...list.children].find((x) => x.dataset.id && Number(x.dataset.id) > m.id);
  list.insertBefore(li, later || null);
  if (!oldestId) oldestId = m.id;
}

let readBusy = false;
async function markRead() {
  const c = conv;
  if (!c || document.visibilityState === "hidden" || readBusy) return;
  const theirs = [...$("messages").querySelectorAll(".theirs[data-id]")];
  if (!theirs.length) return;
  const last = Number(theirs[theirs.length - 1].dataset.id);
  if (c.readUpTo >= last) return;
  readBusy = true;
  try {
    await talk.read(c, last);
    c.readUpTo = last;
  } catch (e) {
    if (e && e.code === 1004) sessionEnded(e);
  } finally {
    readBusy = false;
  }
}

function closeConversation() {
  conv = null;
  store.set("open", null);
  document.body.classList.remove("conv-open");
  $("conv-open").hidden = true;
  $("conv-empty").hidden = false;
  $("members-box").hidden = true;
  renderContacts();
  renderGroups();
}

async function send(e) {
  e.preventDefault();
  const box = $("text");
  const text = box.value;
  if (!text.trim() || !conv || overLimit(text)) return;
  box.value = "";
  countChars();
  if (composing.edit) return saveEdit(composing.edit, text);
  const m = { uid_from: me.uid, message: text, time: 0, read: false, read_by: 0, locked: !conv.gid && !!conv.encrypted };
  if (composing.reply) m.reply_to = composing.reply.id;
  endCompose();
  if (conv.gid) m.gid = conv.gid;
  else m.uid_to = conv.uid;
  const li = messageItem(m);
  li.classList.add("pending");
  $("messages").append(li);
  toBottom();
  deliver(li, m, conv, crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
}

// deliver sends one message to conversation c; a failed one says why and
// is sent again (with the same client_msg_id, so never twice) when
// clicked.
async function deliver(li, m, c, clientMsgId) {
  show($("conv-error"), "");
  try {
    const r = await talk.send(c, m.message, clientMsgId, m.reply_to);
    m.id = r.id;
    m.time = r.time;
    const done = messageItem(m);
    if ($("messages").querySelector(`[data-id="${r.id}"]`)) li.remove();
    else li.replaceWith(done);
    if (!oldestId && conv === c) oldestId = r.id;
    notePreview(m);
    return true;
  } catch (err) {
    if (err && err.code === 1004) return sessionEnded(err);
    sendFailed(li, m, c, clientMsgId, err);
    return false;
  }
}

// Groups (API.md §12).

let groupsSeq = 0;
async function loadGroups() {
  // Events may ask for the list twice in a row: the last answer asked
  // for is the one shown.
  const seq = ++groupsSeq;
  await guard($("side-error"), async () => {
    const r = await chat.groups();
    if (seq !== groupsSeq) return;
    groups = new Map((r.data || []).map((g) => [g.gid, g]));
    renderGroups();
    loadPreviews([...groups.keys()].map((gid) => ({ uid: 0, gid })));
  });
}

function renderGroups() {
  const ul = $("groups");
  ul.textContent = "";
  for (const g of groups.values()) {
    const li = document.createElement("li");
    li.dataset.gid = g.gid;
    if (conv && conv.gid === g.gid) li.className = "active";
    const { av, who } = rowParts(
      { name: g.name, head_img: g.head_img, uid: g.gid, group: true },
      g.name,
      `${g.members_num} member${g.members_num === 1 ? "" : "s"}` + (g.role !== "member" ? ` · ${g.role}` : ""),
    );
    li.append(av, who);
    addPreview(li, who, "g" + g.gid);
    addBadge(li, groupUnread.get(g.gid) || 0);
    li.addEventListener("click", () => openGroup(g.gid));
    ul.append(li);
  }
  $("no-groups").hidden = groups.size > 0;
  renderTitle();
}

// toggleGroupForm opens the new-group form with a box per contact.
function toggleGroupForm() {
  const form = $("group-form");
  form.hidden = !form.hidden;
  if (form.hidden) return;
  $("group-name").value = "";
  show($("group-error"), "");
  const ul = $("group-pick-list");
  ul.textContent = "";
  for (const c of contacts.values()) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = c.uid;
    const av = document.createElement("span");
    av.className = "avatar small";
    avatar(av, c.name, c.head_img, c.uid);
    const name = document.createElement("span");
    name.textContent = c.name;
    label.append(box, av, name);
    li.append(label);
    ul.append(li);
  }
  $("group-pick-none").hidden = contacts.size > 0;
  $("group-name").focus();
}

// joinStatus says why uids could not join, from addMembers' statuses.
function joinStatus(data) {
  const why = { not_found: "is not your contact", full: "did not fit: the group is full" };
  const missed = (data || []).filter((x) => why[x.status]);
  const name = (uid) => (contacts.get(uid) || people.get(uid) || { name: `id ${uid}` }).name;
  return missed.map((x) => `${name(x.uid)} ${why[x.status]}.`).join(" ");
}

async function createGroup(e) {
  e.preventDefault();
  const name = $("group-name").value.trim();
  if (!name) {
    show($("group-error"), "A group needs a name.");
    return;
  }
  const uids = [...$("group-pick-list").querySelectorAll("input:checked")].map((b) => Number(b.value));
  const r = await guard($("group-error"), () => chat.createGroup(name, uids));
  if (!r) return;
  $("group-form").hidden = true;
  show($("side-note"), ("Group created. " + joinStatus(r.data)).trim(), "note ok");
  await loadGroups();
  await openGroup(r.gid);
}

const roleRank = { owner: 0, admin: 1, member: 2 };

// renderMembers lists the open group's members, owner first, with what
// my role lets me do: remove (owner: anyone; admin: members) and add.
function renderMembers() {
  const ul = $("members");
  ul.textContent = "";
  const sorted = conv.members.slice().sort((a, b) => (roleRank[a.role] ?? 3) - (roleRank[b.role] ?? 3) || a.uid - b.uid);
  for (const m of sorted) {
    const li = document.createElement("li");
    li.dataset.uid = m.uid;
    li.dataset.role = m.role;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = m.role;
    const { av, who } = rowParts(m, m.uid === me.uid ? `${m.name} (you)` : m.name, `id ${m.uid} · `, role);
    li.append(av, who);
    if (m.uid !== me.uid && (conv.role === "owner" || (conv.role === "admin" && m.role === "member"))) {
      const rm = document.createElement("button");
      rm.className = "remove";
      rm.textContent = "Remove";
      rm.addEventListener("click", () => removeMember(m));
      li.append(rm);
    }
    ul.append(li);
  }
  renderAddMember();
}

// renderAddMember offers owner and admins the contacts not in the group.
function renderAddMember() {
  const inGroup = new Set(conv.members.map((m) => m.uid));
  const choices = [...contacts.values()].filter((c) => !inGroup.has(c.uid));
  const sel = $("members-add-uid");
  sel.textContent = "";
  for (const c of choices) {
    const o = document.createElement("option");
    o.value = c.uid;
    o.textContent = `${c.name} (id ${c.uid})`;
    sel.append(o);
  }
  $("members-add").hidden = conv.role === "member" || choices.length === 0;
}

async function addMember(e) {
  e.preventDefault();
  const c = conv;
  const uid = Number($("members-add-uid").value);
  if (!c || !c.gid || !uid) return;
  const r = await guard($("members-error"), () => chat.addGroupMembers(c.gid, [uid]));
  if (!r) return;
  const why = joinStatus(r.data);
  if (why) show($("members-error"), why);
  await refreshGroupInfo();
}

async function removeMember(m) {
  const c = conv;
  if (!c || !confirm(`Remove ${m.name} from ${c.name}?`)) return;
  const r = await guard($("members-error"), () => chat.removeGroupMembers(c.gid, [m.uid]));
  if (r) await refreshGroupInfo();
}

async function leaveGroup() {
  const c = conv;
  if (!c || !c.gid || !confirm(`Leave ${c.name}? You will no longer see its messages.`)) return;
  const r = await guard($("conv-error"), () => chat.leaveGroup(c.gid));
  if (!r) return;
  leftGroup(c, `You left ${c.name}.`);
}

// leftGroup forgets group c, which I am no longer in, saying so.
function leftGroup(c, note) {
  groups.delete(c.gid);
  groupUnread.delete(c.gid);
  if (conv === c) closeConversation();
  else renderGroups();
  show($("side-note"), note, "note ok");
  loadGroups();
}

// refreshGroupInfo re-reads the open group's members and name.
async function refreshGroupInfo() {
  const c = conv;
  if (!c || !c.gid) return;
  let info;
  try {
    info = await chat.groupInfo(c.gid);
  } catch (e) {
    if (e && e.code === 1004) return sessionEnded(e);
    if (groupGone(e) && conv === c) leftGroup(c, `You are no longer in ${c.name}.`);
    return;
  }
  if (conv !== c) return;
  applyGroupInfo(c, info);
  renderHeader();
}

// onGroupEvent follows event: group ({gid, what, uid}): the list always,
// and the open group's members, or its closing when I am the one out.
function onGroupEvent(ev) {
  const c = conv;
  if (c && c.gid === ev.gid && ev.uid === me.uid && (ev.what === "removed" || ev.what === "left")) {
    leftGroup(c, ev.what === "removed" ? `You were removed from ${c.name}.` : `You left ${c.name}.`);
    return;
  }
  loadGroups();
  if (c && c.gid === ev.gid) refreshGroupInfo();
}

function bindGroups() {
  $("group-new").addEventListener("click", toggleGroupForm);
  $("group-cancel").addEventListener("click", () => ($("group-form").hidden = true));
  $("group-form").addEventListener("submit", createGroup);
  $("group-members-toggle").addEventListener("click", () => {
    $("members-box").hidden = !$("members-box").hidden;
    show($("members-error"), "");
  });
  $("members-add").addEventListener("submit", addMember);
  $("group-leave").addEventListener("click", leaveGroup);
}

// Live updates.

async function onMessage(m) {
  if (!me) return;
  if (rich.isUpdate(m)) return onUpdate(m);
  await readable(m);
  notePreview(m);
  // A group's message belongs to the group, whoever wrote it.
  const here = conv && (m.gid ? conv.gid === m.gid : !conv.gid && m.uid_from === conv.uid);
  if (here) {
    if ($("typing").dataset.uid === String(m.uid_from)) hideTyping();
    const stick = atBottom();
    appendMessage({ ...m, read: false, read_by: 0 });
    if (stick) toBottom();
    markRead();
    if (m.gid && !people.has(m.uid_from)) learnPeople();
  } else if (m.uid_from !== me.uid && m.gid) {
    if (countUpTo(countedUpTo.gid, m.gid, m.id)) groupUnread.set(m.gid, (groupUnread.get(m.gid) || 0) + 1);
    countedLocally++;
    renderGroups();
    refreshUnreadSoon();
  } else if (m.uid_from !== me.uid) {
    if (countUpTo(countedUpTo.uid, m.uid_from, m.id)) unread.set(m.uid_from, (unread.get(m.uid_from) || 0) + 1);
    countedLocally++;
    renderContacts();
    refreshUnreadSoon();
    if (!contacts.has(m.uid_from)) loadContacts();
  }
  if (m.uid_from !== me.uid) noticeMessage(m, senderName(m), here);
}

function onEvent(type, data) {
  if (!data) return;
  if (type === "read" && conv && !conv.gid && !data.gid && data.uid === conv.uid) {
    for (const li of $("messages").querySelectorAll(".mine[data-id]")) {
      if (Number(li.dataset.id) <= data.last_id) setRead(li, true);
    }
  } else if (type === "contact") {
    loadContacts();
    loadRequests();
    loadBlocked();
  } else if (type === "group") {
    onGroupEvent(data);
  } else if (type === "presence") {
    onPresence(data);
  } else if (type === "typing") {
    onTyping(data);
  } else if (type === "keys" && conv && !conv.gid && data.uid === conv.uid) {
    checkKeys(conv, true);
  }
}

function banner(text, ok) {
  const b = $("banner");
  b.textContent = text || "";
  b.className = ok ? "ok" : "";
  b.hidden = !text;
}

let bannerTimer = 0;
function onState(state, info) {
  mode = info.mode;
  clearTimeout(bannerTimer);
  if (state === "reconnecting") {
    if (!lostAt) lostAt = Date.now();
    banner("Connection lost. Reconnecting… " + (info.error ? describe(info.error) : ""));
  } else if (state === "live") {
    if (lostAt) {
      lostAt = 0;
      banner("Reconnected.", true);
      bannerTimer = setTimeout(() => banner(""), 3000);
      resync();
    } else {
      banner("");
    }
  } else if (state === "ended") {
    banner("");
    sessionEnded(info.error || new ChatError(401, 1004, ""));
  } else if (state === "replaced") {
    banner("This chat is open in too many other tabs or windows, which took over its updates. Reload the page to use it here.");
  }
  document.body.dataset.connection = state;
  document.body.dataset.mode = mode;
}

function resync() {
  resendUnsent();
  loadContacts();
  loadGroups();
  loadRequests();
  loadUnread();
  syncNewest();
  refreshGroupInfo();
}

function listen() {
  stopListening();
  listener = chat.listen(null, onMessage, { onState, onEvent });
  // Without the stream nothing tells of requests, read ticks or groups'
  // changes: look every 15 s. With it, a look every minute catches
  // anything missed.
  let ticks = 0;
  syncTimer = setInterval(() => {
    ticks++;
    if (mode === "poll" || ticks % 4 === 0) resync();
  }, 15000);
}

function stopListening() {
  if (listener) listener.close();
  listener = null;
  clearInterval(syncTimer);
  lostAt = 0;
  banner("");
}

// Finishing touches: previews in the lists, profiles kept fresh, the
// "new messages" divider and the days of the conversation, notices that
// fade, the message length, and messages re-sent by themselves once the
// server can be reached again.

function bindFinish() {
  // Day separators follow whatever adds messages (a page of history, a
  // live one, a send), so they are placed after every change to the list.
  dayObserver = new MutationObserver(renderDays);
  dayObserver.observe($("messages"), { childList: true });
  new MutationObserver(() => fadeNote($("side-note"))).observe($("side-note"), { childList: true, characterData: true, subtree: true });
  $("text").addEventListener("input", countChars);
  window.addEventListener("online", resendUnsent);
  // Nothing on the stream tells of a contact's new name or picture: look
  // again when the page is looked at again.
  let lookedAt = 0;
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !me || Date.now() - lookedAt < 5000) return;
    lookedAt = Date.now();
    loadContacts();
  });
}

// Previews: the last message and its time under each contact and group,
// one History of a single message per conversation, then kept by what
// arrives and what I send. Keys are "u<uid>" and "g<gid>".
const previews = new Map(); // key → {id, time, text}
const previewsBusy = new Set();
const previewKey = (c) => (c.gid ? "g" + c.gid : "u" + c.uid);

function contactsLoaded() {
  applyProfiles();
  loadPreviews([...contacts.keys()].map((uid) => ({ uid, gid: 0 })));
}

// loadPreviews asks for the previews not known yet, and those of groups
// whose newest message is newer than the one shown, four at a time.
async function loadPreviews(convs) {
  const stale = (c) => {
    const p = previews.get(previewKey(c));
    if (previewsBusy.has(previewKey(c))) return false;
    if (!p) return true;
    const g = c.gid && groups.get(c.gid);
    return !!g && g.last_id > p.id;
  };
  const todo = convs.filter(stale);
  for (let i = 0; i < todo.length; i += 4) {
    await Promise.all(todo.slice(i, i + 4).map(loadPreview));
  }
}

async function loadPreview(c) {
  const key = previewKey(c);
  previewsBusy.add(key);
  try {
    const r = await talk.history(c, { limit: 1 });
    const m = r.data && r.data[0];
    if (m) setPreview(key, await readable(m));
    else if (!previews.has(key)) previews.set(key, { id: 0, time: 0, text: "" });
  } catch {
    // The line shows no preview; the next load asks again.
  } finally {
    previewsBusy.delete(key);
  }
}

// previewText is a message's first line as a list shows it: a file by
// its name, and what has no text (deleted, undecryptable) in words.
function previewText(m) {
  if (m.deleted) return "Message deleted";
  if (m.undecryptable) return "🔒 Encrypted message";
  const line = (m.message || "").split("\n")[0];
  if (m.kind === "file") return "📎 " + (m.file ? m.file.name : "File") + (line ? " " + line : "");
  return (m.locked ? "🔒 " : "") + line;
}

// notePreview keeps the preview of m's conversation (m arrived, or I sent it).
function notePreview(m) {
  if (!me || !m.id) return;
  const other = m.uid_from === me.uid ? m.uid_to : m.uid_from;
  setPreview(m.gid ? "g" + m.gid : "u" + other, m);
}

function setPreview(key, m) {
  const known = previews.get(key);
  if (known && known.id >= m.id) return;
  let text = previewText(m);
  if (m.uid_from === me.uid) text = "You: " + text;
  else if (m.gid) text = ((people.get(m.uid_from) || contacts.get(m.uid_from) || {}).name || `id ${m.uid_from}`) + ": " + text;
  previews.set(key, { id: m.id, time: m.time, text: text.slice(0, 120) });
  const sel = key[0] === "g" ? `#groups li[data-gid="${key.slice(1)}"]` : `#contacts li[data-uid="${key.slice(1)}"]`;
  const li = document.querySelector(sel);
  if (!li) return;
  li.querySelector(".preview")?.remove();
  li.querySelector(".when")?.remove();
  addPreview(li, li.querySelector(".who"), key);
}

// addPreview adds a list item's last message and its time.
function addPreview(li, who, key) {
  const p = previews.get(key);
  if (!p || !p.id) return;
  const line = document.createElement("small");
  line.className = "preview";
  line.textContent = p.text;
  who.append(line);
  const at = document.createElement("time");
  at.className = "when";
  at.dateTime = new Date(p.time * 1000).toISOString();
  at.textContent = shortWhen(p.time);
  li.insertBefore(at, li.querySelector(".badge"));
}

// shortWhen is a list's time: today's hour, yesterday, or the date.
function shortWhen(unix) {
  const d = new Date(unix * 1000);
  const days = dayNumber(Date.now() / 1000) - dayNumber(unix);
  if (days === 0) return timeFmt.format(d);
  if (days === 1) return "Yesterday";
  return dayFmt.format(d);
}

// dayNumber counts local calendar days, for telling two times' days apart.
function dayNumber(unix) {
  const d = new Date(unix * 1000);
  return Math.round(new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 86400000);
}

// applyProfiles shows the contacts' names and pictures as just loaded
// everywhere they appear: the open conversation's header and the
// senders in the open group.
function applyProfiles() {
  const c = conv;
  const p = c && !c.gid ? contacts.get(c.uid) : null;
  if (p && (p.name !== c.name || p.head_img !== c.head_img)) {
    c.name = p.name;
    c.head_img = p.head_img;
    renderHeader();
  }
  for (const q of contacts.values()) {
    if (people.has(q.uid)) people.set(q.uid, { ...people.get(q.uid), name: q.name, head_img: q.head_img });
  }
  for (const el of $("messages").querySelectorAll(".from[data-sender]")) fillSender(el);
}

// profileChanged shows my own new name or picture where else it appears.
function profileChanged() {
  if (people.has(me.uid)) people.set(me.uid, { ...people.get(me.uid), name: me.name, head_img: me.head_img });
  if (conv && conv.gid) refreshGroupInfo();
}

// rowParts makes what every list row of people and groups begins with:
// p's avatar (a group's if p.group, its id p.uid) and, beside it, title
// in bold over a line of sub (text and nodes).
function rowParts(p, title, ...sub) {
  const av = document.createElement("span");
  av.className = p.group ? "avatar group" : "avatar";
  avatar(av, p.name, p.head_img, p.uid);
  const who = document.createElement("div");
  who.className = "who";
  const name = document.createElement("strong");
  name.textContent = title;
  const line = document.createElement("small");
  line.append(...sub);
  who.append(name, line);
  return { av, who };
}

// blockedRow is a blocked user's line, laid out as a contact's.
function blockedRow(b) {
  const li = document.createElement("li");
  li.dataset.uid = b.uid;
  const { av, who } = rowParts(b, b.name, (b.handle ? `@${b.handle} · ` : "") + `id ${b.uid}`);
  const un = document.createElement("button");
  un.className = "unblock";
  un.textContent = "Unblock";
  un.addEventListener("click", () =>
    guard($("side-error"), async () => {
      await chat.unblock([b.uid]);
      await loadBlocked();
    }),
  );
  li.append(av, who, un);
  return li;
}

// placeUnreadDivider marks where the unread messages of c begin, as
// counted when it was opened: above the last that many of theirs.
function placeUnreadDivider(c) {
  const list = $("messages");
  list.querySelector(".unread-divider")?.remove();
  const n = c.unreadAtOpen || 0;
  const theirs = [...list.querySelectorAll(".theirs[data-id]")];
  if (conv !== c || n <= 0 || !theirs.length) return;
  const d = document.createElement("li");
  d.className = "unread-divider";
  d.textContent = n === 1 ? "1 new message" : `${n > 99 ? "99+" : n} new messages`;
  list.insertBefore(d, theirs[Math.max(0, theirs.length - n)]);
  // After showConversation scrolled to the bottom: the divider in view.
  requestAnimationFrame(() => d.scrollIntoView({ block: "nearest" }));
}

// Day separators: "Today", "Yesterday" or the date, above each day's
// first message (and above the unread divider that may precede it).
let dayObserver = null;
const longDayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric" });
const yearDayFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });

function dayLabel(unix) {
  const days = dayNumber(Date.now() / 1000) - dayNumber(unix);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  const d = new Date(unix * 1000);
  return d.getFullYear() === new Date().getFullYear() ? longDayFmt.format(d) : yearDayFmt.format(d);
}

function renderDays() {
  const list = $("messages");
  dayObserver.disconnect();
  for (const d of list.querySelectorAll(":scope > .day")) d.remove();
  let last = null;
  for (const li of [...list.children]) {
    if (!li.classList.contains("msg")) continue;
    // A message not stored yet is today's.
    const t = Number(li.dataset.time) || Date.now() / 1000;
    const day = dayNumber(t);
    if (day === last) continue;
    last = day;
    const sep = document.createElement("li");
    sep.className = "day";
    sep.textContent = dayLabel(t);
    const prev = li.previousElementSibling;
    list.insertBefore(sep, prev && prev.classList.contains("unread-divider") ? prev : li);
  }
  dayObserver.observe(list, { childList: true });
}

// fadeNote lets a notice ("Request accepted…") go after a few seconds.
let noteTimer = 0;
function fadeNote(el) {
  clearTimeout(noteTimer);
  el.classList.remove("fading");
  if (el.hidden || !el.textContent) return;
  noteTimer = setTimeout(() => {
    el.classList.add("fading");
    noteTimer = setTimeout(() => {
      el.hidden = true;
      el.classList.remove("fading");
    }, 600);
  }, 5000);
}

// The length of a message: the server takes up to MAX_CHARS characters
// (code points; Config.MessageMaxChars' default). The box takes more,
// counting near the end, and Send says how much is too much.
const MAX_CHARS = 4000;

function countChars() {
  const n = [...$("text").value].length;
  const el = $("text-count");
  el.hidden = n <= MAX_CHARS - 500;
  el.textContent = `${n} / ${MAX_CHARS}`;
  el.classList.toggle("over", n > MAX_CHARS);
  el.title = n > MAX_CHARS ? `${n - MAX_CHARS} characters too many` : `${MAX_CHARS - n} characters left`;
}

function overLimit(text) {
  const n = [...text].length;
  if (n <= MAX_CHARS) return false;
  show($("conv-error"), `This message is ${n - MAX_CHARS} characters too long: a message holds at most ${MAX_CHARS}. Shorten it, or send it in parts.`);
  return true;
}

// Unsent messages. A send that failed because the server could not be
// reached (or could not answer for now) waits here, and is sent again,
// with its client_msg_id (so never twice), when the connection comes
// back, after a growing delay, or when clicked.
const unsent = []; // {li, m, c, clientMsgId}, oldest first
let resendTimer = 0;
let resendDelay = 0;
let resending = false;

const retryable = (err) => err && (err.code === 0 || err.status >= 500 || err.code === 1503 || err.code === 1010);

// sendFailed shows only the failure on li (no "sending…", no tick).
function sendFailed(li, m, c, clientMsgId, err) {
  li.classList.remove("pending");
  li.classList.add("failed");
  li.querySelector(".meta").hidden = true;
  li.querySelector(".why")?.remove();
  const why = document.createElement("span");
  why.className = "why";
  if (retryable(err)) {
    const cause = err.code === 0 && !err.status ? "the chat server cannot be reached" : describe(err);
    why.textContent = `Not sent yet: ${cause}. It will be sent by itself once the connection is back; click to send it now.`;
    if (!unsent.some((u) => u.li === li)) unsent.push({ li, m, c, clientMsgId });
    scheduleResend(err);
  } else {
    why.textContent = `Not sent: ${describe(err)} Click to try again.`;
  }
  li.append(why);
  li.onclick = () => {
    const i = unsent.findIndex((u) => u.li === li);
    if (i >= 0) unsent.splice(i, 1);
    retrying(li);
    deliver(li, m, c, clientMsgId);
  };
}

// retrying shows li as being sent again.
function retrying(li) {
  li.onclick = null;
  li.classList.remove("failed");
  li.classList.add("pending");
  li.querySelector(".why")?.remove();
  li.querySelector(".meta").hidden = false;
}

function scheduleResend(err) {
  clearTimeout(resendTimer);
  resendDelay = Math.min(30000, resendDelay ? resendDelay * 2 : 2000);
  resendTimer = setTimeout(resendUnsent, Math.max(resendDelay, (err.retryAfter || 0) * 1000));
}

// resendUnsent sends the waiting messages again in order, stopping at
// the first that fails again (it is queued again, with the timer).
async function resendUnsent() {
  if (resending || !unsent.length) return;
  resending = true;
  clearTimeout(resendTimer);
  try {
    while (unsent.length) {
      const u = unsent.shift();
      retrying(u.li);
      if (!(await deliver(u.li, u.m, u.c, u.clientMsgId))) {
        // Queued again at the end: back to the front, to keep the order.
        const i = unsent.findIndex((x) => x.li === u.li);
        if (i > 0) unsent.unshift(...unsent.splice(i, 1));
        return;
      }
    }
    resendDelay = 0;
  } finally {
    resending = false;
  }
}

// Notifications (API.md §14): notify.js shows them while the tab is
// hidden, sw.js when no tab is open; here is only what ties them to the
// page's state.

function bindNotifications() {
  setupNotifications({
    chat,
    button: $("notify-enable"),
    note: $("notify-note"),
    onOpen: (c) => (c.gid ? openGroup(c.gid) : openConversation(c.uid)),
    renderTitle,
  });
}

// senderName is who a notification says m is from: the contact, or the
// group's member, by name; the group's name when the sender is unknown.
function senderName(m) {
  const p = contacts.get(m.uid_from) || people.get(m.uid_from);
  if (p && p.name) return m.gid && groups.has(m.gid) ? `${p.name} · ${groups.get(m.gid).name}` : p.name;
  return m.gid && groups.has(m.gid) ? groups.get(m.gid).name : "fiberchat";
}

// Wiring.

function bind() {
  $("tab-login").addEventListener("click", () => tab("login"));
  $("tab-register").addEventListener("click", () => tab("register"));
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const uid = $("login-uid").value.trim();
    // Digits are a uid; anything else (or @ and anything) a handle.
    const handle = /^\d{1,19}$/.test(uid) ? "" : uid.replace(/^@/, "");
    if (handle && !/^[A-Za-z0-9_.]{3,32}$/.test(handle)) {
      show($("auth-error"), "Log in with your user id (a number, like 10000001) or your handle (3 to 32 letters, digits, _ or .).");
      return;
    }
    const passwd = $("login-passwd").value;
    const ok = await guard($("auth-error"), () => (handle ? chat.loginHandle(handle, passwd) : chat.login(uid, passwd)));
    if (ok) {
      store.set("last_uid", uid);
      $("login-passwd").value = "";
      enter();
    }
  });
  $("register-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("register-name").value.trim();
    const passwd = $("register-passwd").value;
    const handle = $("register-handle").value.trim().replace(/^@/, "");
    const r = await guard($("auth-error"), () => chat.register(name, passwd, handle));
    if (!r) return;
    store.set("last_uid", String(r.uid));
    $("login-uid").value = r.uid;
    const ok = await guard($("auth-error"), () => chat.login(r.uid, passwd));
    $("register-passwd").value = "";
    if (ok) enter();
    else {
      tab("login");
      show($("auth-note"), `Your user id is ${r.uid}. Log in with it.`, "note ok");
    }
  });
  $("logout").addEventListener("click", async () => {
    stopListening();
    await unsubscribePush();
    try {
      await chat.logout();
    } catch {
      // The session is forgotten here whatever the server said.
    }
    store.set("open", null);
    closeConversation();
    showAuth();
  });
  $("profile-toggle").addEventListener("click", () => {
    $("profile").hidden = !$("profile").hidden;
    $("profile-name").value = me.name;
    $("profile-handle").value = me.handle;
    $("profile-discoverable").checked = me.discoverable;
    show($("profile-error"), "");
  });
  $("profile-cancel").addEventListener("click", () => ($("profile").hidden = true));
  $("profile").addEventListener("submit", async (e) => {
    e.preventDefault();
    await guard($("profile-error"), async () => {
      const file = $("profile-file").files[0];
      if (file) await chat.uploadAvatar(file);
      const name = $("profile-name").value.trim();
      const handle = $("profile-handle").value.trim().replace(/^@/, "").toLowerCase();
      const discoverable = $("profile-discoverable").checked;
      if ((name && name !== me.name) || (handle && handle !== me.handle) || discoverable !== me.discoverable) {
        await chat.updateProfile({ name: name !== me.name ? name : "", handle: handle !== me.handle ? handle : "", discoverable });
      }
      const info = await chat.info();
      me = { uid: info.uid, name: info.name, head_img: info.head_img, handle: info.handle || "", discoverable: info.discoverable !== 0 };
      renderMe();
      profileChanged();
      $("profile-file").value = "";
      $("profile").hidden = true;
    });
  });
  $("add-form").addEventListener("submit", addContact);
  $("search-close").addEventListener("click", () => {
    $("search-box").hidden = true;
    $("search-results").textContent = "";
  });
  $("refresh").addEventListener("click", resync);
  $("older").addEventListener("click", loadPage);
  $("scroller").addEventListener("scroll", () => {
    if (scroller().scrollTop < 40 && !$("older").hidden && !loadingOlder) {
      loadingOlder = true;
      loadPage().finally(() => (loadingOlder = false));
    }
  });
  $("back").addEventListener("click", closeConversation);
  $("peer-delete").addEventListener("click", async () => {
    if (!conv || conv.gid || !confirm(`Remove ${conv.name} from your contacts? Your history stays.`)) return;
    await guard($("conv-error"), async () => {
      await chat.deleteContacts([conv.uid]);
      await loadContacts();
      $("peer-delete").hidden = true;
    });
  });
  $("peer-block").addEventListener("click", async () => {
    if (!conv || conv.gid || !confirm(`Block ${conv.name}? They can no longer message you or ask to be a contact.`)) return;
    await guard($("conv-error"), async () => {
      await chat.block([conv.uid]);
      closeConversation();
      await Promise.all([loadContacts(), loadRequests(), loadBlocked()]);
    });
  });
  $("composer").addEventListener("submit", send);
  $("compose-cancel").addEventListener("click", endCompose);
  bindFiles();
  $("text").addEventListener("input", sendTyping);
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  document.addEventListener("visibilitychange", markRead);
}

let loadingOlder = false;

function tab(which) {
  $("tab-login").classList.toggle("active", which === "login");
  $("tab-register").classList.toggle("active", which === "register");
  $("login-form").hidden = which !== "login";
  $("register-form").hidden = which !== "register";
  show($("auth-error"), "");
  show($("auth-note"), "");
}

start();

// Replies, edits, deletes and reactions (API.md §13). Each message shown
// keeps its record (li.record), which an update arriving live changes
// (onUpdate); the page applies its own updates at once, as the server
// sends an update to everyone but its maker.

const quickEmoji = ["👍", "❤️", "😂"];
// composing is what the composer's next submit does besides sending:
// answer a message (reply) or replace my message's text (edit).
const composing = { reply: null, edit: null };

// decorateRich adds to a message item its reply quote, edited mark,
// deleted state, reactions and actions.
function decorateRich(li, m, text, meta) {
  li.record = m;
  if (m.reply_to) li.insertBefore(replyQuote(m.reply_to), text);
  if (m.deleted) {
    text.textContent = "This message was deleted.";
    text.classList.add("deleted");
    return;
  }
  if (m.edited_time) {
    const ed = document.createElement("span");
    ed.className = "edited";
    ed.textContent = "edited";
    meta.prepend(ed);
  }
  if (m.reactions && m.reactions.length) li.append(reactionsRow(m));
  if (m.id && m.time) li.append(messageActions(m));
}

// replyQuote is the snippet of the message answered, as shown here
// (fillQuote).
function replyQuote(id) {
  const q = document.createElement("blockquote");
  q.className = "quote";
  q.dataset.ref = id;
  fillQuote(q);
  return q;
}

function fillQuote(q) {
  const li = $("messages").querySelector(`[data-id="${q.dataset.ref}"]`);
  const m = li && li.record;
  q.textContent = !m ? "An earlier message" : m.deleted ? "A deleted message" : snippet(m.message);
}

// fillQuotes redraws every quote shown: after a page of history came in
// above them, or a message they quote changed.
function fillQuotes() {
  for (const q of $("messages").querySelectorAll(".quote[data-ref]")) fillQuote(q);
}

function snippet(text) {
  text = text || ""; // a file sent without a caption has no message
  return text.length > 80 ? text.slice(0, 79) + "…" : text;
}

function reactionsRow(m) {
  const row = document.createElement("span");
  row.className = "reactions";
  for (const r of m.reactions) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "reaction" + (r.uids.includes(me.uid) ? " mine" : "");
    b.dataset.emoji = r.emoji;
    b.textContent = `${r.emoji} ${r.uids.length}`;
    b.addEventListener("click", () => toggleReaction(m.id, r.emoji));
    row.append(b);
  }
  return row;
}

// messageActions are a message's menu: reply, react, and, where I may,
// edit and delete.
function messageActions(m) {
  const box = document.createElement("span");
  box.className = "actions";
  const mine = m.uid_from === me.uid;
  const admin = conv && conv.gid && (conv.role === "owner" || conv.role === "admin");
  const act = (cls, label, title, fn) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.textContent = label;
    b.title = title;
    b.addEventListener("click", fn);
    box.append(b);
  };
  act("act-reply", "↩", "Reply", () => startCompose("reply", m));
  for (const e of quickEmoji) act("act-react", e, `React ${e}`, () => toggleReaction(m.id, e));
  if (mine && !m.undecryptable) act("act-edit", "✎", "Edit", () => startCompose("edit", m));
  if (mine || admin) act("act-delete", "🗑", "Delete for everyone", () => deleteMessage(m.id));
  return box;
}

// startCompose makes the composer answer m, or edit it.
function startCompose(what, m) {
  composing.reply = what === "reply" ? m : null;
  composing.edit = what === "edit" ? m : null;
  $("compose-what").textContent = what === "reply" ? `Replying to: ${snippet(m.message || "")}` : "Editing your message";
  $("compose-note").hidden = false;
  if (what === "edit") $("text").value = m.message || "";
  $("text").focus();
}

function endCompose() {
  composing.reply = composing.edit = null;
  $("compose-note").hidden = true;
}

// sendReplyTo sends text to conversation c as an answer to replyTo.
function sendReplyTo(c, text, id, replyTo) {
  if (!c.gid && c.encrypted) return chat.sendEncryptedReply(c.uid, text, device, replyTo, id);
  return chat.sendReply(c.gid ? { gid: c.gid } : { uid: c.uid }, text, replyTo, id);
}

async function saveEdit(m, text) {
  endCompose();
  const c = conv;
  const r = await guard($("conv-error"), () =>
    m.locked ? chat.editEncrypted(c.uid, m.id, text, device) : chat.editMessage(m.id, text),
  );
  if (r) applyShown({ kind: "edit", ref_id: m.id, message: text, time: Math.floor(Date.now() / 1000), uid_from: me.uid });
}

async function deleteMessage(id) {
  const r = await guard($("conv-error"), () => chat.deleteMessage(id));
  if (r) applyShown({ kind: "delete", ref_id: id, uid_from: me.uid });
}

async function toggleReaction(id, emoji) {
  const li = $("messages").querySelector(`[data-id="${id}"]`);
  const r0 = li && (li.record.reactions || []).find((r) => r.emoji === emoji);
  const on = !(r0 && r0.uids.includes(me.uid));
  const r = await guard($("conv-error"), () => chat.react(id, emoji, on));
  if (r) applyShown({ kind: "reaction", ref_id: id, emoji, on, uid_from: me.uid });
}

// onUpdate applies an update that arrived to the message it changes, if
// the open conversation shows it; History shows the rest as they stand.
async function onUpdate(u) {
  if (u.kind === "edit" && u.enc) await readable(u);
  applyShown(u);
}

// applyShown redraws the message u changes with u applied.
function applyShown(u) {
  const li = $("messages").querySelector(`[data-id="${u.ref_id}"]`);
  if (!li || !li.record) return;
  const m = rich.applyUpdate(li.record, u);
  if (u.kind === "edit" && u.enc) m.locked = true;
  const next = messageItem(m);
  if (li.classList.contains("read")) next.classList.add("read");
  li.replaceWith(next);
  fillQuotes();
}
