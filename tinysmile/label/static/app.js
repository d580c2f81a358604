// The rating page: one image at a time, hotkeys, every answer sent at once.
// A request id is made once per answer and reused on every retry, so the server
// counts a retried answer once. Keys are ignored while an answer is on its way or the
// next image is loading: a fast double press never rates an image the rater has not seen.
"use strict";

// The task's keys come from the server (GET api/task): smile's y/n or attitude's 1/2/3,
// with u (can't tell) and space (skip); z undoes. Until they arrive no key answers.
const KEYS = {};
const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
const state = { rater: null, image: null, last: null, busy: true };

function withToken(url) {
  return token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
}

function requestId() {
  // crypto.randomUUID needs a secure context; a LAN address over http is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  let wait = 250;
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await fetch(withToken(path), opts);
    } catch (err) {
      res = null; // network error: the same request is retried below
    }
    if (res && res.status < 500) {
      const data = await res.json();
      if (!res.ok) throw new Error(data.error || res.statusText);
      status("");
      return data;
    }
    // No giving up: the answer is kept (and the keys held) until the server takes it,
    // however long a restart takes.
    status(`server unreachable, retrying (${attempt})…`);
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 4000);
  }
}

function status(text) { $("status").textContent = text; }

function setReady(ready) {
  state.busy = !ready;
  document.body.dataset.ready = ready ? "1" : "0";
}

function show(data) {
  $("rated").textContent = data.rated;
  $("rate-hour").textContent = data.per_hour == null ? "–" : Math.round(data.per_hour);
  $("left").textContent = data.left;
  $("queue").textContent = "queue: " + data.queue;
  state.last = data.last;
  state.image = data.image;
  document.body.dataset.image = data.image || "";
  document.body.dataset.rated = data.rated;
  const img = $("image");
  if (!data.image) {
    img.hidden = true;
    $("done").hidden = false;
    setReady(true);
    return;
  }
  img.hidden = false;
  $("done").hidden = true;
  img.onload = () => setReady(true);
  img.onerror = () => { status("could not load the image; press space to skip it"); setReady(true); };
  img.src = withToken("image/" + data.image);
}

async function step(action) {
  if (state.busy) return;
  setReady(false);
  status("");
  try {
    show(await action());
  } catch (err) {
    status(err.message);
    try { show(await api("api/next?rater=" + encodeURIComponent(state.rater))); }
    catch (err2) { status(err2.message); setReady(true); }
  }
}

function answer(value) {
  if (!state.image) return;
  const body = { request: requestId(), rater: state.rater, image: state.image, answer: value };
  step(() => api("api/vote", body));
}

function undo() {
  if (!state.last) { status("nothing to undo"); return; }
  step(() => api("api/undo", { request: state.last, rater: state.rater }));
}

function press(key) {
  if (key === "z") undo();
  else if (key in KEYS) answer(KEYS[key]);
}

document.addEventListener("keydown", (e) => {
  if ($("rate").hidden || e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.toLowerCase();
  if (key === "z" || key in KEYS) {
    e.preventDefault(); // space would scroll the page
    press(key);
  }
});

function keyName(key) { return key === " " ? "space" : key; }

function addButton(nav, key, text) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.key = key;
  const k = document.createElement("kbd");
  k.textContent = keyName(key);
  b.append(k, " " + text);
  b.addEventListener("click", () => { b.blur(); press(key); });
  nav.append(b);
}

function setTask(task) {
  const nav = $("keys");
  nav.replaceChildren();
  const hints = [];
  task.keys.forEach((k, i) => {
    KEYS[k.key] = k.answer;
    hints.push(keyName(k.key) + " " + k.text);
    // undo sits before skip, as it always has
    if (k.answer === "skip") addButton(nav, "z", "undo");
    addButton(nav, k.key, k.text);
  });
  document.body.dataset.task = task.task;
  $("question").textContent = task.question;
  $("hint").textContent = task.question + " Keys: " + hints.join(", ") + ", z undo.";
}

const taskReady = api("api/task").then(setTask);

function start(name) {
  state.rater = name;
  localStorage.setItem("tinysmile.rater", name);
  $("who").textContent = name;
  $("login").hidden = true;
  $("rate").hidden = false;
  state.busy = false;
  // The first image waits for the task's keys: the page is not ready before both.
  step(async () => {
    await taskReady;
    return api("api/next?rater=" + encodeURIComponent(name));
  });
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("rater").value.trim();
  if (name) start(name);
});

$("switch").addEventListener("click", () => {
  localStorage.removeItem("tinysmile.rater");
  location.reload();
});

const saved = localStorage.getItem("tinysmile.rater");
if (saved) start(saved);
else {
  // The browser restores form fields on reload: "not you?" must not start the next
  // rater's name with the last one's.
  $("rater").value = "";
  $("login").hidden = false;
  $("rater").focus();
}
