// The chat page's service worker (API.md §14): it shows a notification
// for each Web Push the server sends when a message found the user with
// no page open, and a click on it opens the page on that conversation.
// Its scope is the page's directory, where it is served from.
//
// A push carries {uid_from, gid?, name, preview}, encrypted to this
// browser's subscription (RFC 8291); preview is empty for an end-to-end
// encrypted message, whose text never leaves the sender's and the
// recipient's pages.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

self.addEventListener("push", (e) => {
  let d = {};
  try {
    d = e.data ? e.data.json() : {};
  } catch {
    d = {};
  }
  const title = d.name || "fiberchat";
  const body = d.preview || (d.gid ? "New message in a group" : "New message");
  // One notification per conversation: a newer message replaces it.
  const tag = d.gid ? `g${d.gid}` : `u${d.uid_from}`;
  // Browsers require a notification for every push (userVisibleOnly).
  e.waitUntil(self.registration.showNotification(title, { body, tag, renotify: true, data: { uid: d.uid_from, gid: d.gid || 0 } }));
});

self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  const { uid = 0, gid = 0 } = e.notification.data || {};
  const page = new URL("./", self.registration.scope);
  const target = new URL(gid ? `#g${gid}` : uid ? `#u${uid}` : "", page);
  e.waitUntil(
    (async () => {
      const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = wins.find((w) => new URL(w.url).pathname === page.pathname);
      if (open) {
        await open.focus();
        open.postMessage({ type: "fiberchat:open", uid, gid });
        return;
      }
      await self.clients.openWindow(target.href);
    })(),
  );
});
