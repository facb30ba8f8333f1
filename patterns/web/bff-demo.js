// The BFF demo page. It keeps the CSRF token in a variable (never in storage), sends the
// session cookie implicitly (credentials: "same-origin"; it cannot read it: HttpOnly) and
// never receives the API key back. It never touches document.cookie.
"use strict";

const state = { csrf: null, model: null };

function $(id) {
  return document.getElementById(id);
}

function show(text) {
  $("status").textContent = text;
}

async function call(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (state.csrf) headers["x-csrf-token"] = state.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok && response.status !== 401) {
    let message = `HTTP ${response.status}`;
    try {
      message = (await response.json()).error.message;
    } catch (_) {
      /* not an envelope */
    }
    throw new Error(message);
  }
  return response;
}

async function refresh() {
  const response = await call("GET", "/auth/me");
  if (response.status === 401) {
    state.csrf = null;
    $("signin").hidden = false;
    $("account").hidden = true;
    return;
  }
  const me = await response.json();
  state.csrf = me.csrf_token;
  state.model = me.models[0]; // the server's allowlist decides, not this page
  $("who").textContent = me.username;
  $("fingerprint").textContent = me.key_fingerprint || "none";
  $("signin").hidden = true;
  $("account").hidden = false;
  const usage = await (await call("GET", "/usage")).json();
  $("usage").textContent =
    `${usage.requests} requests, ${usage.input_tokens} in / ${usage.output_tokens} out tokens`;
}

async function login(event) {
  event.preventDefault();
  const response = await call("POST", "/auth/login", {
    username: $("username").value,
    password: $("password").value,
  });
  $("password").value = "";
  if (response.status === 401) {
    show("Wrong username or password.");
    return;
  }
  state.csrf = (await response.json()).csrf_token;
  show("");
  await refresh();
}

async function saveKey(event) {
  event.preventDefault();
  const field = $("api-key");
  const value = field.value;
  field.value = ""; // do not keep the key in the page
  await call("PUT", "/keys/anthropic", { api_key: value });
  show("Key saved (sealed on the server).");
  await refresh();
}

async function deleteKey() {
  await call("DELETE", "/keys/anthropic");
  show("Key deleted.");
  await refresh();
}

async function logout() {
  await call("POST", "/auth/logout");
  state.csrf = null;
  show("Signed out.");
  await refresh();
}

// Read the SSE stream as it arrives and append each text delta to the reply.
async function chat(event) {
  event.preventDefault();
  const reply = $("reply");
  reply.textContent = "";
  const response = await call("POST", "/claude/messages", {
    model: state.model,
    max_tokens: 256,
    stream: true,
    messages: [{ role: "user", content: $("prompt").value }],
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let chunks = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks += 1;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const line of lines) {
      if (!line.startsWith("data: ")) continue;
      const data = JSON.parse(line.slice(6));
      if (data.type === "content_block_delta" && data.delta.type === "text_delta") {
        reply.textContent += data.delta.text;
      } else if (data.type === "error") {
        show(data.error.message);
      }
    }
  }
  reply.dataset.chunks = String(chunks);
  reply.dataset.done = "true";
  await refresh();
}

function guarded(handler) {
  return (event) => handler(event).catch((error) => show(error.message));
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", guarded(login));
  $("key-form").addEventListener("submit", guarded(saveKey));
  $("delete-key").addEventListener("click", guarded(deleteKey));
  $("logout").addEventListener("click", guarded(logout));
  $("chat-form").addEventListener("submit", guarded(chat));
  refresh().catch((error) => show(error.message));
});
