// The source guide's "Haiku app" call, made safe where a page can: the key stays in memory
// (unless the user opts into localStorage, to show why not), never enters a URL, and is
// never logged. What a page cannot do is hide the key from other scripts on the same page.
"use strict";

const STORAGE_NAME = "direct-call-api-key";
const API_VERSION = "2023-06-01";
// The page takes ?model=; the fallback must equal patterns.models.FALLBACK_MODEL (a test checks).
const MODEL = new URLSearchParams(location.search).get("model") || "claude-haiku-4-5";

const $ = (id) => document.getElementById(id);

function show(state, text) {
  $("result").dataset.state = state;
  $("result").textContent = text;
}

async function directCall(apiBase, apiKey, prompt, dangerous) {
  const headers = {
    "content-type": "application/json",
    "x-api-key": apiKey,
    "anthropic-version": API_VERSION,
  };
  if (dangerous) headers["anthropic-dangerous-direct-browser-access"] = "true";
  return fetch(`${apiBase.replace(/\/$/, "")}/v1/messages`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      model: MODEL,
      max_tokens: 256,
      messages: [{ role: "user", content: prompt }],
    }),
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
}

async function onSubmit(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) { show("error", "Enter an API key."); return; }
  if ($("remember").checked) localStorage.setItem(STORAGE_NAME, key);
  show("pending", "Sending…");
  let response;
  try {
    response = await directCall($("api").value, key, $("prompt").value, $("dangerous").checked);
  } catch (error) {
    // A CORS refusal is indistinguishable from a network failure, by design.
    show("blocked", "Blocked: the browser hid the answer (no Access-Control-Allow-Origin). " +
      "Without the anthropic-dangerous-direct-browser-access header the API refuses " +
      "browser requests.");
    return;
  }
  const data = await response.json();
  if (!response.ok) {
    show("error", `${response.status} ${data.error.type}: ${data.error.message}`);
    return;
  }
  show("ok", data.content.map((block) => block.text || "").join(""));
}

function init() {
  const params = new URLSearchParams(location.search);
  $("api").value = params.get("api") || "http://127.0.0.1:8420";
  const remembered = localStorage.getItem(STORAGE_NAME);
  if (remembered) { $("key").value = remembered; $("remember").checked = true; }
  $("call").addEventListener("submit", onSubmit);
  $("forget").addEventListener("click", () => {
    localStorage.removeItem(STORAGE_NAME);
    $("key").value = "";
    $("remember").checked = false;
    show("idle", "Key forgotten.");
  });
  document.body.dataset.ready = "true";
}

init();
