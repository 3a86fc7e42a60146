// Notifications of the chat page (API.md §14), apart from app.js.
//
// Two ways a person hears of a message when they are not looking:
//   - the tab is open but hidden: the page itself shows a Notification
//     (the Notification API) and counts the messages it missed in the
//     title, "(3) Alice · fiberchat";
//   - no tab is open: the server pushes (Web Push) to the service worker,
//     sw.js, which shows the notification; a click opens the page on the
//     conversation (#u<uid> or #g<gid>).
// Permission is asked only when the person presses the button, never on
// load: a browser remembers a prompt refused on sight, and the person
// could not have known what it was for.

let opts = null;
let registration = null;
// missed counts the messages that came to the open conversation while
// the tab was hidden: they are not unread in the lists (the conversation
// is open), yet the person has not seen them.
let missed = 0;

/**
 * setupNotifications registers the service worker and wires the button.
 * o: {chat, button, note, onOpen({uid}|{gid}), renderTitle()}.
 */
export function setupNotifications(o) {
  opts = o;
  if ("serviceWorker" in navigator) {
    // Its scope is the page's directory (./): the worker's own.
    registration = navigator.serviceWorker.register("sw.js").catch(() => null);
    navigator.serviceWorker.addEventListener("message", (e) => {
      const d = e.data || {};
      if (d.type === "fiberchat:open") opts.onOpen(d.gid ? { gid: d.gid } : { uid: d.uid });
    });
  }
  o.button.addEventListener("click", enableNotifications);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && missed) {
      missed = 0;
      opts.renderTitle();
    }
  });
  renderNotifyButton();
}

/** notificationsAllowed reports whether this page may show notifications. */
function notificationsAllowed() {
  return "Notification" in window && Notification.permission === "granted";
}

/** renderNotifyButton shows the button while notifications are not on. */
function renderNotifyButton() {
  const supported = "Notification" in window;
  const perm = supported ? Notification.permission : "denied";
  opts.button.hidden = !supported || perm !== "default";
  opts.note.textContent = perm === "denied" && supported ? "Notifications are blocked for this site in the browser's settings." : "";
  opts.note.hidden = !opts.note.textContent;
}

/** enableNotifications asks for permission (from the button only), then
 * subscribes this browser for pushes. */
async function enableNotifications() {
  if (!("Notification" in window)) return;
  const perm = await Notification.requestPermission();
  renderNotifyButton();
  if (perm === "granted") await subscribePush();
}

/**
 * subscribePush subscribes this browser for the signed-in user's pushes
 * when notifications are allowed: at each start (a subscription moves to
 * whoever is signed in) and when the person turns them on. It never asks
 * for permission. A browser without Push (or whose push service cannot
 * be reached) still has the notifications of a hidden tab.
 */
export async function subscribePush() {
  if (!notificationsAllowed() || !registration || !("PushManager" in window)) return;
  try {
    const reg = await registration;
    if (!reg) return;
    const key = await opts.chat.pushKey();
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromBase64URL(key) });
    await opts.chat.pushSubscribe(sub);
  } catch (e) {
    console.warn("push subscription:", e && e.message ? e.message : e);
  }
}

/** unsubscribePush stops this browser's pushes for the user logging out,
 * so that the next person on it is not told of their messages. */
export async function unsubscribePush() {
  try {
    const reg = registration && (await registration);
    const sub = reg && (await reg.pushManager.getSubscription());
    if (sub) await opts.chat.pushUnsubscribe(sub.endpoint);
  } catch {
    // The session may be gone already; the server drops the
    // subscription when the next user of this browser subscribes it.
  }
}

/**
 * noticeMessage tells of m (not mine, decrypted if it could be) while the
 * tab is hidden: a Notification from sender name, and, when m is in the
 * open conversation, one more in the title's count. here says m is in
 * the open conversation.
 */
export function noticeMessage(m, name, here) {
  if (!document.hidden) return;
  if (here) {
    missed++;
    opts.renderTitle();
  }
  if (!notificationsAllowed()) return;
  // An encrypted message's text stays in the page, out of the system's
  // notification centre.
  const body = m.enc || !m.message ? "New message" : preview(m.message);
  const tag = m.gid ? `g${m.gid}` : `u${m.uid_from}`;
  const n = new Notification(name || "fiberchat", { body, tag, renotify: true });
  n.onclick = () => {
    window.focus();
    opts.onOpen(m.gid ? { gid: m.gid } : { uid: m.uid_from });
    n.close();
  };
}

/** missedCount is how many messages the title counts besides the unread. */
export function missedCount() {
  return missed;
}

/** conversationFromURL returns the conversation a notification's click
 * opened the page on (#u<uid> or #g<gid>), once, or null. */
export function conversationFromURL() {
  const m = /^#([ug])(\d{1,19})$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return m[1] === "g" ? { gid: Number(m[2]) } : { uid: Number(m[2]) };
}

function preview(text) {
  return text.length > 100 ? text.slice(0, 100) + "…" : text;
}

function fromBase64URL(s) {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

function sameKey(buf, key) {
  if (!buf) return false;
  const a = new Uint8Array(buf);
  const b = fromBase64URL(key);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
