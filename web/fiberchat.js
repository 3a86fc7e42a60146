// fiberchat.js: a dependency-free ES module for fiberchat's HTTP contract
// (docs/API.md). It signs every request with the api_token the server
// handed the page (the client secret never reaches the browser), keeps the
// user's session, exposes every route as an async function, and listens
// for messages over the push stream (/Message/Stream, Server-Sent Events)
// with a fallback to long polls.
//
//   import { configure } from "/chat/static/fiberchat.js";
//   const chat = configure({
//     base: "/chat",                 // the module's mount prefix
//     clientId: "web",
//     tokens: () => fetch("/chat-tokens").then((r) => r.json()),
//   });
//   await chat.login(10000001, "secret");
//   const stop = chat.listen(null, (m) => console.log(m.uid_from, m.message));
//
// tokens is { "YYYY-MM-DD": { routeName: api_token } } (what the Go
// module's BrowserTokens returns), or a function returning it (or a promise
// of it), which is called again when the day changes or a token is refused.
// A route's name is module+controller+action of its path (routeName below).
//
// Every route function resolves to the parsed response body, or rejects
// with a ChatError carrying the HTTP status, the contract's error code and
// its msg.

/** ChatError is a failed request: status is the HTTP status (0 when the
 * server could not be reached), code the contract's error code (0 when
 * there was none), msg the server's msg. */
export class ChatError extends Error {
  constructor(status, code, msg, body = null) {
    super(msg || `HTTP ${status}`);
    this.name = "ChatError";
    this.status = status;
    this.code = code;
    this.msg = msg || "";
    this.body = body;
    this.retryAfter = 0;
  }
}

/** routeName is the module+controller+action string an api_token is
 * computed from: the first three path segments, lower-cased, a missing
 * one being "index" (API.md §1a). */
export function routeName(path) {
  const segs = path.toLowerCase().split("/").filter((s) => s !== "");
  while (segs.length < 3) segs.push("index");
  return segs.slice(0, 3).join("");
}

/** configure returns a Client; see Client's constructor for the options. */
export function configure(options) {
  return new Client(options);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// utcDay is the browser's idea of today (YYYY-MM-DD, UTC, the module's
// default Location); a wrong guess costs one refused request.
const utcDay = () => new Date().toISOString().slice(0, 10);

// backoff is the wait before reconnect attempt n (1, 2, …): 1 s doubling
// up to 15 s, with jitter so that a restarted server is not hit by every
// page at once.
const backoff = (n) => Math.min(15000, 1000 * 2 ** Math.max(0, n - 1)) * (0.75 + Math.random() / 2);

/** Client talks to one fiberchat mount. */
export class Client {
  #base;
  #clientId;
  #tokens;
  #tokenSet = null;
  #tokenSetDay = "";
  #goodDay = "";
  #session;
  #onSession;
  // When typing was last sent, per conversation.
  #typingSent = new Map();
  #fetch;

  /**
   * @param {object} o
   * @param {string} [o.base] the mount prefix ("" or "/chat"), or an absolute URL
   * @param {string} o.clientId the API client's client_id
   * @param {object|function} o.tokens day → route name → api_token, or a
   *   function returning it (or a promise of it)
   * @param {{uid:number, access_token:string}} [o.session] a session to resume
   * @param {function} [o.onSession] called with the session after login and
   *   with null after logout or when the server ends it (1004)
   */
  constructor({ base = "", clientId, tokens, session = null, onSession = () => {}, fetch: f } = {}) {
    if (!clientId) throw new TypeError("fiberchat: clientId is required");
    this.#base = base.replace(/\/+$/, "");
    this.#clientId = clientId;
    this.#tokens = tokens || {};
    this.#session = session;
    this.#onSession = onSession;
    this.#fetch = f || globalThis.fetch.bind(globalThis);
  }

  /** session is {uid, access_token, expire_time}, or null when logged out. */
  get session() {
    return this.#session;
  }

  /** setSession resumes a session kept elsewhere (null forgets it). */
  setSession(session) {
    this.#session = session;
  }

  /** url is the absolute-or-relative URL of path under the mount. */
  url(path) {
    return this.#base + path;
  }

  // #tokenMap returns the token map, fetching it when tokens is a function
  // and the day changed, or when refresh is asked for.
  async #tokenMap(refresh) {
    if (typeof this.#tokens !== "function") return this.#tokens;
    if (refresh || !this.#tokenSet || this.#tokenSetDay !== utcDay()) {
      this.#tokenSet = (await this.#tokens()) || {};
      this.#tokenSetDay = utcDay();
      this.#goodDay = "";
    }
    return this.#tokenSet;
  }

  // #candidates lists the days to try, best first: the day that last
  // worked, the browser's today, then the others in the map.
  #candidates(map) {
    const days = Object.keys(map);
    const first = [this.#goodDay, utcDay()].filter((d) => d && days.includes(d));
    return [...new Set([...first, ...days.sort().reverse()])];
  }

  // #signed runs attempt(query) with the api_token of route for each
  // candidate day until one is not refused with 1002, fetching a fresh
  // token map once when every day was refused.
  async #signed(path, attempt) {
    const route = routeName(path);
    let lastErr = null;
    for (const refresh of [false, true]) {
      if (refresh && typeof this.#tokens !== "function") break;
      const map = await this.#tokenMap(refresh);
      for (const day of this.#candidates(map)) {
        const token = map[day] && map[day][route];
        if (!token) continue;
        try {
          const out = await attempt(new URLSearchParams({ client_id: this.#clientId, api_token: token }));
          this.#goodDay = day;
          return out;
        } catch (e) {
          if (!(e instanceof ChatError) || e.code !== 1002) throw e;
          lastErr = e;
        }
      }
    }
    throw lastErr || new ChatError(403, 1002, `no api_token for ${route}: reload the page`);
  }

  /**
   * call posts body to path (relative to the mount) with the credentials
   * and returns the parsed body. body may be a plain object (sent as JSON)
   * or a FormData (sent as multipart, credentials as form fields).
   */
  async call(path, body = {}, { signal, auth = true } = {}) {
    const s = this.#session;
    const isForm = typeof FormData !== "undefined" && body instanceof FormData;
    if (auth && s) {
      if (isForm) {
        body.set("uid", String(s.uid));
        body.set("access_token", s.access_token);
      } else {
        body = { ...body, uid: s.uid, access_token: s.access_token };
      }
    }
    return this.#signed(path, async (q) => {
      let res;
      try {
        res = await this.#fetch(`${this.url(path)}?${q}`, {
          method: "POST",
          headers: isForm ? {} : { "Content-Type": "application/json" },
          body: isForm ? body : JSON.stringify(body),
          signal,
          credentials: "same-origin",
        });
      } catch (e) {
        if (e && e.name === "AbortError") throw e;
        throw new ChatError(0, 0, "network error: " + (e && e.message ? e.message : e));
      }
      const text = await res.text();
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      // Every answer of the chat's is an envelope (API.md §2): one that is
      // not (a proxy's page, say) is an error, whatever its status.
      const code = parsed && typeof parsed.error === "number" ? parsed.error : -1;
      if (!res.ok || code !== 0) {
        const why = parsed && parsed.msg ? parsed.msg : code < 0 && res.ok ? "unexpected answer: not the chat's JSON" : res.statusText;
        const err = new ChatError(res.status, code < 0 ? 0 : code, why, parsed);
        err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
        if (err.code === 1004 && auth && this.#session === s) {
          this.#session = null;
          this.#onSession(null);
        }
        throw err;
      }
      return parsed;
    });
  }

  // User group (API.md §3).

  /**
   * register creates an account, with a handle when one is given (3–32 of
   * a-z, 0-9, _ and .; 409/1007 when taken); resolves to {reg, uid, …}.
   */
  register(name, passwd, handle = "") {
    const body = { name, passwd };
    if (handle) body.handle = handle;
    return this.call("/user/reg/ajax_reg", body, { auth: false });
  }

  /** login opens a session and keeps it; resolves to {access_token, expire_time, …}. */
  async login(uid, passwd) {
    const r = await this.call("/user/login", { uid: String(uid), passwd }, { auth: false });
    this.#session = { uid: Number(uid), access_token: r.access_token, expire_time: r.expire_time };
    this.#onSession(this.#session);
    return r;
  }

  /**
   * loginHandle is login naming the account by handle (any case); the
   * session's uid is the one the server answers with. A handle no one has
   * fails as a wrong password does (1005).
   */
  async loginHandle(handle, passwd) {
    const r = await this.call("/user/login", { handle, passwd }, { auth: false });
    this.#session = { uid: Number(r.uid), access_token: r.access_token, expire_time: r.expire_time };
    this.#onSession(this.#session);
    return r;
  }

  /** logout ends the session on the server and forgets it here, whatever the server said. */
  async logout() {
    try {
      return await this.call("/user/logout");
    } finally {
      this.#session = null;
      this.#onSession(null);
    }
  }

  info() {
    return this.call("/user/info");
  }

  /** uploadAvatar sends a File or Blob; resolves to {image}. */
  uploadAvatar(file) {
    const form = new FormData();
    form.set("file", file);
    return this.call("/user/info/head_img", form);
  }

  /**
   * updateProfile changes name, head_img and/or handle (empty = unchanged),
   * discoverable when it is a boolean (whether search finds me), and
   * show_presence when given (true/false: show or hide my presence, and
   * so everyone's to me).
   */
  updateProfile({ name = "", head_img = "", handle = "", discoverable, show_presence } = {}) {
    const body = { name, head_img };
    if (handle) body.handle = handle;
    if (typeof discoverable === "boolean") body.discoverable = discoverable ? 1 : 0;
    if (show_presence !== undefined) body.show_presence = show_presence ? 1 : 0;
    return this.call("/user/info/update", body);
  }

  changePassword(oldPasswd, newPasswd) {
    return this.call("/user/info/passwd", { old_passwd: oldPasswd, new_passwd: newPasswd });
  }

  // Contacts group (API.md §4, §9).

  contacts() {
    return this.call("/Contacts/list");
  }

  /**
   * search finds up to 20 people whose handle starts with q or whose name
   * contains it (q: 2–64 characters); resolves to {num, data: [{uid, name,
   * head_img, handle}]}. Rate-limited per user (1010).
   */
  search(q) {
    return this.call("/Contacts/search", { q });
  }

  contactsInfo(uids) {
    return this.call("/Contacts/Info", { data: uidList(uids) });
  }

  addContacts(uids) {
    return this.call("/Contacts/IO/addContacts", { data: uidList(uids) });
  }

  deleteContacts(uids) {
    return this.call("/Contacts/IO/delContacts", { data: uidList(uids) });
  }

  /** requests lists the pending contact requests to me. */
  requests() {
    return this.call("/Contacts/list/add");
  }

  /** answerRequest accepts (true) or refuses (false) uidFrom's request. */
  answerRequest(uidFrom, accept) {
    return this.call("/Contacts/IO/acceptContacts", { uid_from: Number(uidFrom), type: accept ? 1 : 0 });
  }

  block(uids) {
    return this.call("/Contacts/IO/block", { data: uidList(uids) });
  }

  unblock(uids) {
    return this.call("/Contacts/IO/unblock", { data: uidList(uids) });
  }

  blocked() {
    return this.call("/Contacts/blocked");
  }

  // Message group (API.md §5, §9).

  /** send resolves to {id, time}; clientMsgId makes a retry safe. */
  send(uidTo, data, clientMsgId) {
    const body = { uid_to: Number(uidTo), data };
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.call("/Message/Send", body);
  }

  /**
   * typing tells the other side of a conversation ({uid} or {gid}) that
   * I am typing. The server relays one every 3 s at most, and this sends
   * at most one every 2 s per conversation, so call it on every input.
   */
  typing({ uid, gid }) {
    const key = gid ? `g${gid}` : `u${uid}`;
    const now = Date.now();
    if ((this.#typingSent.get(key) || 0) > now - 2000) return Promise.resolve(null);
    this.#typingSent.set(key, now);
    return this.call("/Message/Typing", gid ? { gid: Number(gid) } : { uid_to: Number(uid) });
  }

  // End-to-end encryption (API.md §15); device is newDevice's.

  /** publishKey publishes device's public key (the same key again changes nothing). */
  publishKey(device) {
    return this.call("/user/keys/publish", { device_id: device.id, key: toBase64(device.publicKey) });
  }

  /** deviceKeys resolves to keys/get's answer: data is [{uid, device_id, key, time}]. */
  deviceKeys(uids) {
    return this.call("/user/keys/get", { data: uidList(uids) });
  }

  /** sendEncrypted sends text to uidTo encrypted for every device of
   * uidTo's and of mine, as fetched now; resolves to {id, time}. */
  async sendEncrypted(uidTo, text, device, clientMsgId) {
    const me = this.session && this.session.uid;
    const keys = (await this.deviceKeys([uidTo, me])).data;
    if (!keys.some((k) => k.uid === Number(uidTo))) throw new E2EEError("the recipient has published no device key");
    const body = { uid_to: Number(uidTo), enc: await sealMessage(device, keys, text) };
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.call("/Message/Send", body);
  }

  /** decrypt resolves to m's text: m.message for a plain message, the
   * decrypted enc for an encrypted one; it rejects with an E2EEError for
   * one this device cannot read. */
  async decrypt(m, device) {
    if (!m.enc) return m.message;
    const keys = (await this.deviceKeys([m.uid_from])).data;
    const sender = keys.find((k) => k.device_id === m.enc.from);
    if (!sender) throw new E2EEError("the sender's device key is unknown");
    return openMessage(device, this.session.uid, sender.key, m.enc);
  }

  // Replies, edits, deletes and reactions (API.md §13). Every record has
  // kind: "text" for a message; "edit", "delete" or "reaction" for an
  // update of the message ref_id, which arrives through Recv and the
  // stream like a message (see isUpdate).

  /** sendReply sends data to {uid} or {gid} as an answer to the message
   * replyTo; resolves to {id, time}. */
  sendReply({ uid, gid }, data, replyTo, clientMsgId) {
    const body = gid ? { gid: Number(gid), data } : { uid_to: Number(uid), data };
    body.reply_to = Number(replyTo);
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.call("/Message/Send", body);
  }

  /** sendEncryptedReply is sendEncrypted answering the message replyTo. */
  async sendEncryptedReply(uidTo, text, device, replyTo, clientMsgId) {
    const body = { uid_to: Number(uidTo), enc: await this.sealFor(uidTo, text, device), reply_to: Number(replyTo) };
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.call("/Message/Send", body);
  }

  /** editMessage replaces the text of my message id; resolves to {id}
   * (the update's). */
  editMessage(id, data) {
    return this.call("/Message/Edit", { id: Number(id), data });
  }

  /** editEncrypted replaces the text of my encrypted message id to uidTo. */
  async editEncrypted(uidTo, id, text, device) {
    return this.call("/Message/Edit", { id: Number(id), enc: await this.sealFor(uidTo, text, device) });
  }

  /** deleteMessage deletes the message id for everyone; resolves to {id},
   * 0 when it was deleted already. */
  deleteMessage(id) {
    return this.call("/Message/Delete", { id: Number(id) });
  }

  /** react puts emoji on the message id (on true) or takes it off;
   * resolves to {id}, 0 when nothing changed. */
  react(id, emoji, on) {
    return this.call("/Message/React", { id: Number(id), emoji, on: on ? 1 : 0 });
  }

  /** sealFor encrypts text for every device of uidTo's and of mine. */
  async sealFor(uidTo, text, device) {
    const me = this.session && this.session.uid;
    const keys = (await this.deviceKeys([uidTo, me])).data;
    if (!keys.some((k) => k.uid === Number(uidTo))) throw new E2EEError("the recipient has published no device key");
    return sealMessage(device, keys, text);
  }

  // Web Push (API.md §14).

  /** pushKey resolves to the server's VAPID public key (base64url), the
   * applicationServerKey of pushManager.subscribe. GET, not signed. */
  async pushKey() {
    let res;
    try {
      res = await this.#fetch(this.url("/push/key"), { credentials: "same-origin" });
    } catch (e) {
      throw new ChatError(0, 0, "network error: " + (e && e.message ? e.message : e));
    }
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || body.error !== 0 || !body.key) {
      throw new ChatError(res.status, body && body.error ? body.error : 0, body && body.msg ? body.msg : res.statusText, body);
    }
    return body.key;
  }

  /** pushSubscribe asks the server to push to subscription (a
   * PushSubscription, or its toJSON()) for me. */
  pushSubscribe(subscription) {
    const s = typeof subscription.toJSON === "function" ? subscription.toJSON() : subscription;
    return this.call("/user/push/subscribe", { endpoint: s.endpoint, keys: s.keys });
  }

  /** pushUnsubscribe stops the pushes to endpoint for me. */
  pushUnsubscribe(endpoint) {
    return this.call("/user/push/unsubscribe", { endpoint });
  }

  /** recv is one Recv: {last_id, wait, limit} all optional. */
  recv(options = {}, signal) {
    return this.call("/Message/Recv", options, { signal });
  }

  /** history pages back through the conversation with uidWith, newest first. */
  history(uidWith, { before_id, limit } = {}) {
    return this.call("/Message/History", page({ uid_with: Number(uidWith) }, before_id, limit));
  }

  /** markRead marks uidFrom's messages to me up to lastId as read. */
  markRead(uidFrom, lastId) {
    return this.call("/Message/Read", { uid_from: Number(uidFrom), last_id: lastId });
  }

  /**
   * unread resolves to {num, data}: one entry per sender of unread 1:1
   * messages ({uid_from, count, last_id}) and one per group with unread
   * messages ({gid, count, last_id}), told apart by which id they carry.
   */
  unread() {
    return this.call("/Message/Unread");
  }

  // Groups (API.md §12). A gid is never a uid: they are counted from
  // different starts.

  /** createGroup makes a group named name with me as its owner and
   * those of uids (my contacts) as members; resolves to {gid, num, data:
   * [{uid, status}]}, statuses as addGroupMembers'. */
  createGroup(name, uids = []) {
    return this.call("/Group/create", { name, data: uidList(uids) });
  }

  /** groups lists the groups I am in, newest activity first:
   * {num, data: [{gid, name, head_img, role, members_num, last_id}]}. */
  groups() {
    return this.call("/Group/list");
  }

  /** groupInfo resolves to {gid, name, head_img, time, members_num,
   * data: [{uid, name, head_img, role}]} (members only). */
  groupInfo(gid) {
    return this.call("/Group/info", { gid: Number(gid) });
  }

  /** addGroupMembers adds my contacts to gid (owner and admins); per uid
   * a status: added, already_member, not_found or full. */
  addGroupMembers(gid, uids) {
    return this.call("/Group/IO/addMembers", { gid: Number(gid), data: uidList(uids) });
  }

  /** removeGroupMembers takes uids out of gid; resolves to {num} removed. */
  removeGroupMembers(gid, uids) {
    return this.call("/Group/IO/removeMembers", { gid: Number(gid), data: uidList(uids) });
  }

  /** leaveGroup takes me out of gid (an owner hands ownership on). */
  leaveGroup(gid) {
    return this.call("/Group/IO/leave", { gid: Number(gid) });
  }

  /** updateGroup changes name and/or head_img (empty = unchanged). */
  updateGroup(gid, { name = "", head_img = "" } = {}) {
    return this.call("/Group/IO/update", { gid: Number(gid), name, head_img });
  }

  /** setGroupRole makes member "admin", "member", or "owner" (handing
   * ownership over); owner only. */
  setGroupRole(gid, member, role) {
    return this.call("/Group/IO/role", { gid: Number(gid), member: Number(member), role });
  }

  /** sendToGroup is send to every member of gid but me. */
  sendToGroup(gid, data, clientMsgId) {
    const body = { gid: Number(gid), data };
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.call("/Message/Send", body);
  }

  // Files (API.md §13).

  /**
   * uploadFile sends a File or Blob to /Message/Upload and resolves to
   * {file_id, name, size, mime, url, thumb_url}. The credentials go
   * before the file part: a server that streams uploads reads them first.
   */
  uploadFile(file, name) {
    const form = new FormData();
    // Placeholders that call() fills in place, ahead of the file.
    form.set("uid", "");
    form.set("access_token", "");
    form.set("file", file, name || file.name || "file");
    return this.call("/Message/Upload", form);
  }

  /** sendFile sends an uploaded file to uidTo, caption its (optional) text. */
  sendFile(uidTo, fileId, caption = "", clientMsgId) {
    const body = { uid_to: Number(uidTo), file_id: Number(fileId), data: caption };
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.call("/Message/Send", body);
  }

  /** sendFileToGroup is sendFile to the group gid. */
  sendFileToGroup(gid, fileId, caption = "", clientMsgId) {
    const body = { gid: Number(gid), file_id: Number(fileId), data: caption };
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.call("/Message/Send", body);
  }

  /**
   * fileURL makes a record's file url (or thumb_url) one a page can load:
   * the server hands out paths unless it has a public URL, and those are
   * on the server the client calls.
   */
  fileURL(u) {
    if (!u) return "";
    const origin = typeof location !== "undefined" ? location.href : "http://localhost/";
    return new URL(u, new URL(this.#base || "/", origin)).href;
  }

  /** groupHistory pages back through gid's messages, newest first; each
   * carries read_by, how many other members have read it. */
  groupHistory(gid, { before_id, limit } = {}) {
    return this.call("/Message/History", page({ gid: Number(gid) }, before_id, limit));
  }

  /** markGroupRead marks gid read up to lastId for me. */
  markGroupRead(gid, lastId) {
    return this.call("/Message/Read", { gid: Number(gid), last_id: lastId });
  }

  /**
   * listen delivers my messages with id > fromId (or, with fromId null,
   * those stored from now on) to onMessage, each once and in id order,
   * until the returned handle's close(). It uses the push stream
   * (/Message/Stream) and resumes it from the last id it delivered; when
   * the server has no stream (404) it falls back to long polls.
   *
   * opts.onState(state, info) is told "connecting", "live",
   * "reconnecting" (info.error says why), "ended" (the session is
   * over: log in again) and "replaced" (the server ended the stream for
   * a newer one of the session or user, past its caps: listening again
   * would end another's in turn); info.mode is "stream" or "poll".
   * A group's message carries gid (and no uid_to).
   * opts.onEvent(type, data) receives the stream's other events: "read",
   * "contact", "group" ({gid, what, uid}: created, added, removed, left,
   * updated or role, uid being the member it is about), "typing" ({uid,
   * gid?}: shown for a few seconds), "presence" ({uid, online,
   * last_seen}), "keys" ({uid}: a contact's device keys changed) and
   * "bye". Long polls carry messages only.
   */
  listen(fromId, onMessage, { onState = () => {}, onEvent = () => {} } = {}) {
    let lastId = fromId == null ? null : Number(fromId);
    let closed = false;
    let es = null;
    let abort = null;
    let failures = 0;
    let mode = "stream";
    let state = "";
    const setState = (s, extra = {}) => {
      if (s === state && s !== "reconnecting") return;
      state = s;
      onState(s, { mode, ...extra });
    };
    const deliver = (m) => {
      if (lastId != null && m.id <= lastId) return;
      lastId = m.id;
      onMessage(m);
    };
    const end = (error) => {
      closed = true;
      setState("ended", { error });
    };
    const me = () => this.#session;

    // streamURL signs the GET for EventSource; every credential goes in
    // the query (API.md §10). attempt picks a day when one was refused.
    const streamURL = async (dayIndex, refresh) => {
      const map = await this.#tokenMap(refresh);
      const days = this.#candidates(map);
      const day = days[dayIndex % Math.max(1, days.length)];
      const s = me();
      if (!s) throw new ChatError(401, 1004, "not logged in");
      const q = new URLSearchParams({
        client_id: this.#clientId,
        api_token: (map[day] && map[day][routeName("/Message/Stream")]) || "",
        user_id: String(s.uid),
        user_token: s.access_token,
      });
      if (lastId != null) q.set("last_id", String(lastId));
      return { url: `${this.url("/Message/Stream")}?${q}`, day, days: days.length };
    };

    // probe learns why an EventSource failed, which EventSource does not
    // tell: the same GET through fetch, dropped once its status is known.
    const probe = async (url) => {
      const ctl = new AbortController();
      try {
        const res = await this.#fetch(url, { signal: ctl.signal, credentials: "same-origin", headers: { Accept: "text/event-stream" } });
        if (res.ok) {
          ctl.abort();
          return { status: res.status, code: 0, msg: "" };
        }
        let body = null;
        try {
          body = await res.json();
        } catch {
          body = null;
        }
        return { status: res.status, code: body && body.error ? body.error : 0, msg: body && body.msg ? body.msg : res.statusText };
      } catch (e) {
        return { status: 0, code: 0, msg: "network error: " + (e && e.message ? e.message : e) };
      }
    };

    // A refused api_token (1002) tries the next day's, then a fresh token
    // map once, before backing off like any other failure.
    let dayIndex = 0;
    let refreshed = false;
    let refreshNext = false;
    const openStream = async () => {
      if (closed) return;
      let target;
      try {
        target = await streamURL(dayIndex, refreshNext);
        refreshNext = false;
      } catch (e) {
        if (e instanceof ChatError && e.code === 1004) return end(e);
        failures++;
        setState("reconnecting", { error: e });
        await sleep(backoff(failures));
        return openStream();
      }
      if (closed) return;
      const source = new EventSource(target.url);
      es = source;
      let opened = false;
      source.onopen = () => {
        opened = true;
        failures = 0;
        dayIndex = 0;
        refreshed = false;
        this.#goodDay = target.day;
        setState("live");
      };
      const json = (e) => {
        try {
          return JSON.parse(e.data);
        } catch {
          return null;
        }
      };
      source.addEventListener("message", (e) => {
        const m = json(e);
        if (m && typeof m.id === "number") deliver(m);
      });
      for (const type of ["read", "contact", "group", "typing", "presence", "keys"]) {
        source.addEventListener(type, (e) => onEvent(type, json(e)));
      }
      source.addEventListener("bye", (e) => {
        source.close();
        if (es === source) es = null;
        const bye = json(e);
        onEvent("bye", bye);
        if (closed) return;
        if (bye && bye.reason === "replaced") {
          // Coming back would end another stream of the session, which
          // would come back for this one's.
          closed = true;
          setState("replaced", { error: new ChatError(0, 0, "the stream was replaced by a newer one") });
          return;
        }
        // Logout, a password change or expiry end the session (the
        // reconnect below then finds 401); shutdown comes back.
        failures++;
        setState("reconnecting", { error: new ChatError(0, 0, "the server closed the stream") });
        sleep(backoff(failures)).then(openStream);
      });
      source.onerror = async () => {
        if (closed || es !== source) return;
        if (source.readyState === EventSource.CONNECTING) {
          // The browser reconnects by itself, sending Last-Event-ID.
          setState("reconnecting", { error: new ChatError(0, 0, "connection lost") });
          return;
        }
        source.close();
        es = null;
        const why = await probe(target.url);
        if (closed) return;
        if (why.status === 404 && !opened) {
          mode = "poll";
          return poll();
        }
        if (why.status === 401 || why.code === 1004) {
          if (this.#session === me()) {
            this.#session = null;
            this.#onSession(null);
          }
          return end(new ChatError(why.status, why.code, why.msg));
        }
        const err = new ChatError(why.status, why.code, why.msg);
        if (why.code === 1002) {
          dayIndex++;
          if (dayIndex < target.days) return openStream();
          dayIndex = 0;
          if (!refreshed && typeof this.#tokens === "function") {
            refreshed = refreshNext = true;
            return openStream();
          }
          // No token of ours opens the stream (a page handed tokens for
          // some routes only): long polls still deliver everything.
          mode = "poll";
          return poll();
        }
        failures++;
        setState("reconnecting", { error: err });
        await sleep(backoff(failures));
        openStream();
      };
    };

    const poll = async () => {
      setState("connecting");
      while (!closed) {
        abort = new AbortController();
        try {
          const body = { wait: 25, limit: 100 };
          if (lastId != null) body.last_id = lastId;
          const r = await this.recv(body, abort.signal);
          failures = 0;
          setState("live");
          const uid = me() ? me().uid : 0;
          // Recv's records leave out uid_to: it is me, but for a group's
          // message, which has none (as on the stream).
          for (const m of r.data || []) deliver(m.gid ? m : { uid_to: uid, ...m });
          if (typeof r.last_id === "number" && (lastId == null || r.last_id > lastId)) lastId = r.last_id;
        } catch (e) {
          if (closed) return;
          if (e instanceof ChatError && e.code === 1004) return end(e);
          failures++;
          setState("reconnecting", { error: e });
          await sleep(e instanceof ChatError && e.retryAfter ? e.retryAfter * 1000 : backoff(failures));
        }
      }
    };

    setState("connecting");
    if (typeof EventSource === "undefined") {
      mode = "poll";
      poll();
    } else {
      openStream();
    }
    return {
      close() {
        closed = true;
        if (es) es.close();
        if (abort) abort.abort();
      },
      get lastId() {
        return lastId;
      },
      get mode() {
        return mode;
      },
    };
  }
}

// page adds History's optional paging fields to body.
function page(body, beforeId, limit) {
  if (beforeId) body.before_id = beforeId;
  if (limit) body.limit = limit;
  return body;
}

function uidList(uids) {
  return (Array.isArray(uids) ? uids : [uids]).map((uid) => ({ uid: Number(uid) }));
}

// ---------------------------------------------------------------------
// End-to-end encryption (API.md §15), with Web Crypto only: the same
// wrapping as the Go SDK's client/e2eecrypto.go, checked against the
// same known-answer vectors (client/testdata/e2ee_vectors.json).
//
//   ct      = AES-256-GCM(message key, nonce, text)
//   kek     = HKDF-SHA-256(X25519(own private, their public), no salt, "fiberchat v1")
//   wrapped = wrap nonce (12 bytes) || AES-256-GCM(kek, wrap nonce, message key)

const E2EE_INFO = new TextEncoder().encode("fiberchat v1");
const SAFETY_DOMAIN = new TextEncoder().encode("fiberchat safety number v1\0");
// PKCS8_X25519 is the PKCS#8 prefix of a raw X25519 private key: Web
// Crypto imports private keys in PKCS#8 only.
const PKCS8_X25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20];

/** E2EEError is a message that cannot be decrypted on this device: not
 * for it, its sender's key unknown, or tampered with. */
/** isUpdate tells whether a record is an update (edit, delete,
 * reaction) of the message m.ref_id rather than a message. */
export function isUpdate(m) {
  return m.kind === "edit" || m.kind === "delete" || m.kind === "reaction";
}

/** applyUpdate returns message m as update u (of m) leaves it: an edit's
 * text and time, deleted, or a reaction put on or taken off. */
export function applyUpdate(m, u) {
  const out = { ...m, reactions: (m.reactions || []).map((r) => ({ emoji: r.emoji, uids: [...r.uids] })) };
  if (u.kind === "edit") {
    out.message = u.message;
    out.enc = u.enc;
    out.edited_time = u.time;
  } else if (u.kind === "delete") {
    out.deleted = true;
    out.message = "";
    delete out.enc;
    out.reactions = [];
  } else if (u.kind === "reaction") {
    let r = out.reactions.find((x) => x.emoji === u.emoji);
    if (u.on && !r) out.reactions.push((r = { emoji: u.emoji, uids: [] }));
    if (r && u.on && !r.uids.includes(u.uid_from)) r.uids.push(u.uid_from);
    if (r && !u.on) r.uids = r.uids.filter((x) => x !== u.uid_from);
    out.reactions = out.reactions.filter((x) => x.uids.length > 0);
  }
  return out;
}

export class E2EEError extends Error {
  constructor(msg) {
    super(msg);
    this.name = "E2EEError";
  }
}

export function toBase64(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

const randomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

/** newDevice makes a device: id and a non-extractable X25519 private key
 * (a CryptoKey, which IndexedDB can keep as it is) with its raw public
 * key, to publish with publishKey. */
export async function newDevice(id) {
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { id, privateKey: pair.privateKey, publicKey: pub };
}

/** importDevice makes a device of a raw 32-byte private key (tests and
 * the known-answer vectors), non-extractable as newDevice's. */
export async function importDevice(id, rawPrivate, rawPublic) {
  const pkcs8 = new Uint8Array([...PKCS8_X25519, ...rawPrivate]);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false, ["deriveBits"]);
  return { id, privateKey, publicKey: new Uint8Array(rawPublic) };
}

// kek derives the key-encryption key of a device's private key and
// another device's raw public key.
async function kek(privateKey, peerRaw) {
  const peer = await crypto.subtle.importKey("raw", peerRaw, { name: "X25519" }, true, []);
  const shared = await crypto.subtle.deriveBits({ name: "X25519", public: peer }, privateKey, 256);
  const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: E2EE_INFO },
    ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** sealMessage encrypts text from device for every key of keys
 * ([{uid, device_id, key}], key in base64, as keys/get returns them) and
 * returns the enc to send. random(n) gives n random bytes: the
 * known-answer test passes fixed ones; the reads are in the Go SDK's
 * order (message key, nonce, one wrap nonce per key). */
export async function sealMessage(device, keys, text, random = randomBytes) {
  const rawKey = random(32);
  const nonce = random(12);
  const msgKey = await crypto.subtle.importKey("raw", rawKey, "AES-GCM", false, ["encrypt"]);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, msgKey, new TextEncoder().encode(text));
  const out = [];
  for (const k of keys) {
    const wrapNonce = random(12);
    const wrapped = await crypto.subtle.encrypt({ name: "AES-GCM", iv: wrapNonce }, await kek(device.privateKey, fromBase64(k.key)), rawKey);
    out.push({ uid: k.uid, device_id: k.device_id, wrapped: toBase64([...wrapNonce, ...new Uint8Array(wrapped)]) });
  }
  return { v: 1, from: device.id, nonce: toBase64(nonce), ct: toBase64(ct), keys: out };
}

/** openMessage decrypts enc for device of user me, its sender's device
 * key being senderKey (base64); it throws an E2EEError when it cannot. */
export async function openMessage(device, me, senderKey, enc) {
  const slot = enc && enc.v === 1 && (enc.keys || []).find((k) => k.uid === me && k.device_id === device.id);
  if (!slot) throw new E2EEError("not encrypted for this device");
  try {
    const wrapped = fromBase64(slot.wrapped);
    const k = await kek(device.privateKey, fromBase64(senderKey));
    const raw = await crypto.subtle.decrypt({ name: "AES-GCM", iv: wrapped.slice(0, 12) }, k, wrapped.slice(12));
    const msgKey = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(enc.nonce) }, msgKey, fromBase64(enc.ct));
    return new TextDecoder("utf-8", { fatal: true }).decode(pt);
  } catch (e) {
    throw new E2EEError("cannot be decrypted: " + e.message);
  }
}

/** safetyNumber is the digest of both users' device keys
 * ([{uid, device_id, key}]), as the Go SDK's SafetyNumber computes it
 * (docs/security.md): six groups of five digits. */
export async function safetyNumber(keys) {
  const sorted = [...keys].sort((a, b) => a.uid - b.uid || (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0));
  const enc = new TextEncoder();
  const parts = [...SAFETY_DOMAIN];
  for (const k of sorted) parts.push(...enc.encode(String(k.uid)), 0, ...enc.encode(k.device_id), 0, ...fromBase64(k.key));
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(parts)));
  const groups = [];
  for (let i = 0; i < 6; i++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + sum[5 * i + j];
    groups.push(String(n % 100000).padStart(5, "0"));
  }
  return groups.join(" ");
}
