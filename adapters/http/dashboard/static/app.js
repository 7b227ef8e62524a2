// The dashboard's only script. The server renders every status, zone and label; this file
// follows the change feed, swaps in the server's fragments and posts actions to the JSON
// API. It never derives a status itself, so the page cannot disagree with the API.
"use strict";
(() => {
  const body = document.body;
  const page = body.dataset.page;
  if (page === "login" || !document.querySelector('meta[name="csrf-token"]')) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const project = body.dataset.project || "";
  const sessionId = body.dataset.session || "";
  const query = project ? `?project=${encodeURIComponent(project)}` : "";
  const EVENT_TYPES = ["session_created", "session_updated", "pr_created", "pr_updated",
    "pr_check_recorded", "notification_created"];
  const DEBOUNCE_MS = 40;
  const DONE_SHOWN = 50;

  // --- small helpers
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  let toastTimer = null;
  function toast(text, bad = false) {
    const box = $("#toast");
    box.textContent = text;
    box.classList.toggle("bad", bad);
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
  }
  let gone = false;  // signed out: stop reconnecting until the user signs in again
  function signedOut() {
    gone = true;
    setPill("offline", "signed out: run orchestrator dashboard");
    if (source) source.close();
  }
  function parse(html) {
    const template = document.createElement("template");
    template.innerHTML = html;  // server-rendered and escaped; the CSP forbids inline script
    return template.content;
  }
  async function fragment(url) {
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    if (response.status === 401) { signedOut(); return null; }
    if (response.status === 204 || response.status === 404) return "";
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.text();
  }
  async function post(url, payload) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }
  const sessionUrl = (id, action) => `/api/v1/sessions/${encodeURIComponent(id)}/${action}`;

  // --- ages ("3m ago"), kept current between fragment swaps
  function ago(iso) {
    const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
      if (seconds >= size) return `${Math.floor(seconds / size)}${unit} ago`;
    }
    return `${seconds}s ago`;
  }
  setInterval(() => { for (const t of $$("time[data-age]")) t.textContent = ago(t.dateTime); }, 10000);

  // --- board: swap cards in place, move them between columns
  function updateCounts() {
    const counts = {};
    for (const list of $$("[data-zone-list]")) counts[list.dataset.zoneList] = list.children.length;
    const columns = $("#columns");
    if (columns) counts.done = Number(columns.dataset.doneTotal);
    for (const el of $$("[data-count]")) {
      if (el.dataset.count in counts) el.textContent = counts[el.dataset.count];
    }
    if (page === "board") {
      const needs = counts.needs_you || 0;
      document.title = `${needs ? `(${needs} need you) ` : ""}orchestrator`;
    }
  }
  function keepCompose(old, fresh) {
    // A message being typed survives the card's refresh.
    const box = old && $(".compose", old);
    if (!box || !fresh) return;
    const focused = box.contains(document.activeElement);
    $(".actions", fresh).after(box);
    if (focused) $("input", box).focus();
  }
  function place(fresh, id) {
    const old = document.getElementById(`card-${id}`);
    const oldZone = old ? old.dataset.zone : null;
    const columns = $("#columns");
    if (!fresh) {
      if (old) old.remove();
      if (oldZone === "done" && columns) columns.dataset.doneTotal -= 1;
      return;
    }
    const zone = fresh.dataset.zone;
    const list = $(`[data-zone-list="${zone}"]`);
    keepCompose(old, fresh);
    if (old && oldZone === zone) { old.replaceWith(fresh); return; }
    if (old) old.remove();
    if (!list) return;
    if (columns && zone === "done") columns.dataset.doneTotal = Number(columns.dataset.doneTotal) + 1;
    if (columns && oldZone === "done") columns.dataset.doneTotal -= 1;
    if (zone === "done") {  // newest ended first, only the newest few
      list.prepend(fresh);
      while (list.children.length > DONE_SHOWN) list.lastElementChild.remove();
      return;
    }
    const after = [...list.children].find((card) => card.dataset.order > fresh.dataset.order);
    list.insertBefore(fresh, after || null);
    const empty = $("#empty");
    if (empty) empty.remove();
  }
  async function refreshCard(id) {
    const html = await fragment(`/ui/frag/card/${encodeURIComponent(id)}${query}`);
    if (html === null) return;
    place(html ? parse(html).firstElementChild : null, id);
  }
  async function refreshBoard() {
    const html = await fragment(`/ui/frag/board${query}`);
    if (html !== null) $("#board").replaceChildren(parse(html));
  }
  async function refreshInto(url, target) {
    const html = await fragment(url);
    if (html !== null && target) target.replaceChildren(parse(html));
  }
  const refreshBell = async () => {
    const html = await fragment(`/ui/frag/bell${query}`);
    if (html) $("#bell").replaceWith(parse(html).firstElementChild);
  };
  const refreshPeek = () => refreshInto(`/ui/frag/peek/${encodeURIComponent(sessionId)}`, $("#peek"));
  async function refreshSession() {
    await refreshInto(`/ui/frag/session/${encodeURIComponent(sessionId)}`, $("#session-panels"));
    const panel = $("#session-panels [data-title]");
    if (panel) document.title = panel.dataset.title;
  }

  // --- coalescing: each burst of events refetches each affected fragment once
  const dirty = new Set();
  let whole = false, bell = false, timer = null;
  function schedule(kind, id) {
    if (kind === "board") whole = true;
    else if (kind === "bell") bell = true;
    else dirty.add(id);
    if (!timer) timer = setTimeout(flush, DEBOUNCE_MS);
  }
  async function flush() {
    timer = null;
    const ids = [...dirty];
    const board = whole, notes = bell;
    dirty.clear(); whole = false; bell = false;
    try {
      const work = [];
      if (notes) work.push(refreshBell());
      if (page === "board") work.push(board ? refreshBoard() : Promise.all(ids.map(refreshCard)));
      if (page === "session" && (board || ids.includes(sessionId))) work.push(refreshSession(), refreshPeek());
      if (page === "notifications" && (notes || board)) {
        work.push(refreshInto(`/ui/frag/notifications${query}`, $("#notification-list")));
      }
      await Promise.all(work);
      updateCounts();
    } catch (error) {
      toast(String(error.message || error), true);
    }
  }

  // --- the change feed
  let source = null, lastEventAt = Date.now(), opened = false, state = "connecting";
  function setPill(next, text) {
    if (gone && !text) return;
    state = next;
    const pill = $("#conn");
    pill.dataset.state = next;
    pill.textContent = text || pillText();
  }
  function pillText() {
    const age = Math.round((Date.now() - lastEventAt) / 1000);
    if (state === "live") return "live";
    const label = state === "reconnecting" ? "reconnecting" : "offline";
    return `${label} · last event ${age} s ago`;
  }
  setInterval(() => { if (state !== "live" && state !== "connecting") setPill(state); }, 1000);
  function onChange(event) {
    lastEventAt = Date.now();
    let data = {};
    try { data = JSON.parse(event.data); } catch (_) { /* keep the defaults */ }
    if (event.type === "notification_created") schedule("bell");
    if (data.sessionId) schedule("card", data.sessionId);
    else schedule("board");
  }
  function connect() {
    if (gone) return;
    // The first connection replays from the seq the page was rendered at.
    const since = opened ? "" : body.dataset.seq || "";
    const params = new URLSearchParams();
    if (project) params.set("project", project);
    if (since) params.set("since", since);
    source = new EventSource(`/api/v1/events${params.toString() ? `?${params}` : ""}`);
    source.onopen = () => {
      setPill("live");
      if (opened) { schedule("board"); schedule("bell"); }  // a reconnect may have missed a gap
      opened = true;
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // The daemon refused the stream (draining, restarted, or the cookie expired).
        setPill("offline");
        fragment(`/ui/frag/bell${query}`).catch(() => null).finally(() => setTimeout(connect, 5000));
      } else {
        setPill("reconnecting");
      }
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onChange);
    source.addEventListener("resync", () => { schedule("board"); schedule("bell"); });
  }
  connect();
  if (page === "session") refreshPeek();

  // --- actions: every control is a button or a form, so the keyboard reaches all of them
  function openCompose(button) {
    const card = button.closest(".card");
    let box = $(".compose", card);
    if (!box) {
      box = parse(`<form class="compose send" data-act="send">
        <input name="message" autocomplete="off" required aria-label="Message to the agent">
        <button type="submit">Send</button>
        <button type="button" data-act="quick" data-message="continue">continue</button>
        <button type="button" data-act="quick" data-message="abort">abort</button></form>`).firstElementChild;
      box.dataset.session = button.dataset.session;
      for (const quick of $$("[data-act=quick]", box)) quick.dataset.session = button.dataset.session;
      $(".actions", card).after(box);
    }
    button.setAttribute("aria-expanded", "true");
    $("input", box).focus();
  }
  function armKill(button) {
    if (button.dataset.armed) return false;
    button.dataset.armed = "1";
    button.textContent = "Confirm kill";
    setTimeout(() => { delete button.dataset.armed; button.textContent = "Kill"; }, 5000);
    return true;
  }
  async function act(button) {
    const id = button.dataset.session;
    switch (button.dataset.act) {
      case "compose": openCompose(button); return;
      case "quick":
        await post(sessionUrl(id, "send"), { message: button.dataset.message });
        toast(`sent to ${id}`); return;
      case "kill":
        if (armKill(button)) return;
        await post(sessionUrl(id, "kill"), {}); toast(`killed ${id}`); return;
      case "restore":
        await post(sessionUrl(id, "restore"), button.dataset.fresh ? { fresh: true } : {});
        toast(`restoring ${id}`); return;
      case "merge": await post(`/ui/act/s/${encodeURIComponent(id)}/merge`); return;
      case "read": case "resolve":
        await post(`/ui/act/notifications/${button.dataset.id}/${button.dataset.act}`);
        schedule("bell"); if (page === "notifications") schedule("board"); return;
      case "peek": await refreshPeek(); return;
      case "copy":
        await navigator.clipboard.writeText($(`#${button.dataset.target}`).textContent);
        toast("copied"); return;
      case "logout": await post("/logout"); window.location.assign("/"); return;
      default:
    }
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    event.preventDefault();
    act(button).catch((error) => toast(error.message, true));
  });
  document.addEventListener("keydown", (event) => {
    const box = event.target.closest && event.target.closest(".compose");
    if (event.key === "Escape" && box) box.remove();
  });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset.act) return;
    event.preventDefault();
    const fields = Object.fromEntries(new FormData(form));
    const done = form.dataset.act === "spawn"
      ? post("/api/v1/sessions", fields).then(async (r) => toast(`spawned ${(await r.json()).id}`))
      : post(sessionUrl(form.dataset.session, "send"), { message: fields.message })
        .then(() => toast(`sent to ${form.dataset.session}`));
    done.then(() => form.reset()).catch((error) => toast(error.message, true));
  });
  for (const select of $$("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
})();
