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

const $ = (id) => document.getElementById(id);

// Sentences for the contract's error codes (API.md §2); the server's msg
// is added when it says more.
const sentences = {
  0: "Cannot reach the chat server. Check your connection and try again.",
  1001: "The server could not accept that.",
  1002: "This page's access to the chat was refused. Reload the page.",
  1004: "Your session has ended. Please log in again.",
  1005: "Wrong user id or password.",
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
let me = null; // {uid, name, head_img}
let contacts = new Map(); // uid → {uid, name, head_img}
let unread = new Map(); // uid → count
let peer = null; // the open conversation's {uid, name, head_img}
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
    ({ configure, ChatError } = await import(`${cfg.base || ""}/static/fiberchat.js`));
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
    me = { uid: info.uid, name: info.name, head_img: info.head_img };
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
  $("auth").hidden = true;
  $("chat").hidden = false;
  renderMe();
  await Promise.all([loadContacts(), loadRequests(), loadUnread(), loadBlocked()]);
  const open = store.get("open");
  if (open) await openConversation(open);
  listen();
}

function showAuth(note) {
  stopListening();
  me = null;
  peer = null;
  $("chat").hidden = true;
  $("auth").hidden = false;
  tab("login");
  show($("auth-error"), note || "");
  $("login-uid").value = $("login-uid").value || (store.get("last_uid") || "");
}

function renderMe() {
  $("me-name").textContent = me.name;
  $("me-uid").textContent = me.uid;
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
  });
}

function renderContacts() {
  const ul = $("contacts");
  ul.textContent = "";
  for (const c of contacts.values()) {
    const li = document.createElement("li");
    li.dataset.uid = c.uid;
    if (peer && peer.uid === c.uid) li.className = "active";
    const av = document.createElement("span");
    av.className = "avatar";
    avatar(av, c.name, c.head_img, c.uid);
    const who = document.createElement("div");
    who.className = "who";
    const name = document.createElement("strong");
    name.textContent = c.name;
    const id = document.createElement("small");
    id.textContent = `id ${c.uid}`;
    who.append(name, id);
    li.append(av, who);
    const n = unread.get(c.uid) || 0;
    if (n > 0) {
      const b = document.createElement("span");
      b.className = "badge";
      b.textContent = n > 99 ? "99+" : String(n);
      b.title = `${n} unread`;
      li.append(b);
    }
    li.addEventListener("click", () => openConversation(c.uid));
    ul.append(li);
  }
  $("no-contacts").hidden = contacts.size > 0;
  const total = [...unread.values()].reduce((a, b) => a + b, 0);
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
      const av = document.createElement("span");
      av.className = "avatar";
      avatar(av, q.name, q.head_img, q.uid);
      const who = document.createElement("div");
      who.className = "who";
      const name = document.createElement("strong");
      name.textContent = q.name;
      const id = document.createElement("small");
      id.textContent = `id ${q.uid} wants to chat`;
      who.append(name, id);
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
    for (const b of r.data || []) {
      const li = document.createElement("li");
      const who = document.createElement("div");
      who.className = "who";
      who.textContent = `${b.name} (id ${b.uid})`;
      const un = document.createElement("button");
      un.textContent = "Unblock";
      un.addEventListener("click", () =>
        guard($("side-error"), async () => {
          await chat.unblock([b.uid]);
          await loadBlocked();
        }),
      );
      li.append(who, un);
      ul.append(li);
    }
    $("blocked-box").hidden = !(r.data && r.data.length);
  });
}

async function loadUnread() {
  await guard($("side-error"), async () => {
    const r = await chat.unread();
    unread = new Map((r.data || []).map((u) => [u.uid_from, u.count]));
    if (peer) unread.delete(peer.uid);
    renderContacts();
  });
}

let unreadTimer = 0;
function refreshUnreadSoon() {
  clearTimeout(unreadTimer);
  unreadTimer = setTimeout(loadUnread, 300);
}

const addStatus = {
  requested: "Request sent. You can talk once they accept.",
  pending: "You have already asked; waiting for their answer.",
  accepted: "They had asked you already: you are now contacts.",
  already_contact: "You are already contacts.",
  not_found: "There is no user with that id.",
  self: "That is your own id.",
};

async function addContact(e) {
  e.preventDefault();
  show($("side-note"), "");
  const raw = $("add-uid").value.trim();
  if (!/^\d{1,19}$/.test(raw)) {
    show($("side-error"), "A user id is a number, like 10000001.");
    return;
  }
  await guard($("side-error"), async () => {
    const r = await chat.addContacts([raw]);
    const st = r.data && r.data[0] ? r.data[0].status : "";
    const bad = st === "not_found" || st === "self";
    show(bad ? $("side-error") : $("side-note"), addStatus[st] || "Done.", bad ? "error" : "note ok");
    if (!bad) $("add-uid").value = "";
    if (st === "accepted") await loadContacts();
  });
}

// The conversation.

function messageItem(m) {
  const mine = m.uid_from === me.uid;
  const li = document.createElement("li");
  li.className = "msg " + (mine ? "mine" : "theirs") + (mine && m.read ? " read" : "");
  if (m.id) li.dataset.id = m.id;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.message;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = m.time ? when(m.time) : "sending…";
  if (mine) {
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.textContent = m.read ? "✓✓" : "✓";
    tick.title = m.read ? "Read" : "Sent";
    meta.append(tick);
  }
  li.append(text, meta);
  return li;
}

function setRead(li, read) {
  if (!li.classList.contains("mine") || !read || li.classList.contains("read")) return;
  li.classList.add("read");
  const tick = li.querySelector(".tick");
  if (tick) {
    tick.textContent = "✓✓";
    tick.title = "Read";
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
  peer = p;
  store.set("open", uid);
  document.body.classList.add("conv-open");
  $("conv-empty").hidden = true;
  $("conv-open").hidden = false;
  $("peer-name").textContent = p.name;
  $("peer-uid").textContent = p.uid;
  avatar($("peer-avatar"), p.name, p.head_img, p.uid);
  $("peer-delete").hidden = !contacts.has(uid);
  $("messages").textContent = "";
  $("older").hidden = true;
  show($("conv-error"), "");
  oldestId = 0;
  unread.delete(uid);
  renderContacts();
  await loadPage();
  toBottom();
  markRead();
  $("text").focus();
}

// loadPage puts the page of history before oldestId (the newest page
// when 0) above what is shown, keeping the view where it was.
async function loadPage() {
  const uid = peer.uid;
  const r = await guard($("conv-error"), () => chat.history(uid, { before_id: oldestId || undefined, limit: 30 }));
  if (!r || !peer || peer.uid !== uid) return;
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
  s.scrollTop = s.scrollHeight - fromBottom;
  $("older").hidden = !r.more;
}

// syncNewest re-reads the newest page: messages missed while the
// connection was down, and read ticks when no stream tells them.
async function syncNewest() {
  if (!peer) return;
  const uid = peer.uid;
  let r;
  try {
    r = await chat.history(uid, { limit: 30 });
  } catch (e) {
    if (e && e.code === 1004) sessionEnded(e);
    return;
  }
  if (!peer || peer.uid !== uid) return;
  const list = $("messages");
  const stick = atBottom();
  for (const m of (r.data || []).slice().reverse()) {
    const li = list.querySelector(`[data-id="${m.id}"]`);
    if (li) setRead(li, m.read);
    else appendMessage(m);
  }
  if (stick) toBottom();
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
  if (!peer || document.visibilityState === "hidden" || readBusy) return;
  const theirs = [...$("messages").querySelectorAll(".theirs[data-id]")];
  if (!theirs.length) return;
  const last = Number(theirs[theirs.length - 1].dataset.id);
  if (peer.readUpTo >= last) return;
  readBusy = true;
  try {
    await chat.markRead(peer.uid, last);
    peer.readUpTo = last;
  } catch (e) {
    if (e && e.code === 1004) sessionEnded(e);
  } finally {
    readBusy = false;
  }
}

function closeConversation() {
  peer = null;
  store.set("open", null);
  document.body.classList.remove("conv-open");
  $("conv-open").hidden = true;
  $("conv-empty").hidden = false;
  renderContacts();
}

async function send(e) {
  e.preventDefault();
  const box = $("text");
  const text = box.value;
  if (!text.trim() || !peer) return;
  box.value = "";
  const m = { uid_from: me.uid, uid_to: peer.uid, message: text, time: 0, read: false };
  const li = messageItem(m);
  li.classList.add("pending");
  $("messages").append(li);
  toBottom();
  deliver(li, m, peer.uid, crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
}

// deliver sends one message; a failed one says why and is sent again
// (with the same client_msg_id, so never twice) when clicked.
async function deliver(li, m, to, clientMsgId) {
  show($("conv-error"), "");
  try {
    const r = await chat.send(to, m.message, clientMsgId);
    m.id = r.id;
    m.time = r.time;
    const done = messageItem(m);
    if ($("messages").querySelector(`[data-id="${r.id}"]`)) li.remove();
    else li.replaceWith(done);
    if (!oldestId) oldestId = r.id;
  } catch (err) {
    if (err && err.code === 1004) return sessionEnded(err);
    li.classList.remove("pending");
    li.classList.add("failed");
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = `Not sent: ${describe(err)} Click to try again.`;
    li.querySelector(".why")?.remove();
    li.append(why);
    li.onclick = () => {
      li.onclick = null;
      li.classList.remove("failed");
      li.classList.add("pending");
      li.querySelector(".why")?.remove();
      deliver(li, m, to, clientMsgId);
    };
  }
}

// Live updates.

function onMessage(m) {
  if (!me) return;
  if (peer && m.uid_from === peer.uid) {
    const stick = atBottom();
    appendMessage({ ...m, read: false });
    if (stick) toBottom();
    markRead();
  } else if (m.uid_from !== me.uid) {
    unread.set(m.uid_from, (unread.get(m.uid_from) || 0) + 1);
    renderContacts();
    refreshUnreadSoon();
    if (!contacts.has(m.uid_from)) loadContacts();
  }
}

function onEvent(type, data) {
  if (!data) return;
  if (type === "read" && peer && data.uid === peer.uid) {
    for (const li of $("messages").querySelectorAll(".mine[data-id]")) {
      if (Number(li.dataset.id) <= data.last_id) setRead(li, true);
    }
  } else if (type === "contact") {
    loadContacts();
    loadRequests();
    loadBlocked();
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
  }
  document.body.dataset.connection = state;
  document.body.dataset.mode = mode;
}

function resync() {
  loadContacts();
  loadRequests();
  loadUnread();
  syncNewest();
}

function listen() {
  stopListening();
  listener = chat.listen(null, onMessage, { onState, onEvent });
  // Without the stream nothing tells of requests and read ticks: look
  // every 15 s. With it, a look every minute catches anything missed.
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

// Wiring.

function bind() {
  $("tab-login").addEventListener("click", () => tab("login"));
  $("tab-register").addEventListener("click", () => tab("register"));
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const uid = $("login-uid").value.trim();
    if (!/^\d{1,19}$/.test(uid)) {
      show($("auth-error"), "Your user id is a number, like 10000001 (you got it when you registered).");
      return;
    }
    const ok = await guard($("auth-error"), () => chat.login(uid, $("login-passwd").value));
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
    const r = await guard($("auth-error"), () => chat.register(name, passwd));
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
    show($("profile-error"), "");
  });
  $("profile-cancel").addEventListener("click", () => ($("profile").hidden = true));
  $("profile").addEventListener("submit", async (e) => {
    e.preventDefault();
    await guard($("profile-error"), async () => {
      const file = $("profile-file").files[0];
      if (file) await chat.uploadAvatar(file);
      const name = $("profile-name").value.trim();
      if (name && name !== me.name) await chat.updateProfile({ name });
      const info = await chat.info();
      me = { uid: info.uid, name: info.name, head_img: info.head_img };
      renderMe();
      $("profile-file").value = "";
      $("profile").hidden = true;
    });
  });
  $("add-form").addEventListener("submit", addContact);
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
    if (!peer || !confirm(`Remove ${peer.name} from your contacts? Your history stays.`)) return;
    await guard($("conv-error"), async () => {
      await chat.deleteContacts([peer.uid]);
      await loadContacts();
      $("peer-delete").hidden = true;
    });
  });
  $("peer-block").addEventListener("click", async () => {
    if (!peer || !confirm(`Block ${peer.name}? They can no longer message you or ask to be a contact.`)) return;
    await guard($("conv-error"), async () => {
      await chat.block([peer.uid]);
      closeConversation();
      await Promise.all([loadContacts(), loadRequests(), loadBlocked()]);
    });
  });
  $("composer").addEventListener("submit", send);
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
