// The admin page's script, served as a file (/admin/page.js): the page's Content-Security-Policy
// runs no inline script, so text an agent sent cannot become code here.
"use strict";
const state = { token: sessionStorage.getItem("mcpgate-admin-token") || "", stream: null };
const $ = (selector) => document.querySelector(selector);

function api(path, options = {}) {
  return fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: "Bearer " + state.token } });
}

// Characters that hide, reorder or fake text (C0 and C1 controls, bidi embeddings, overrides,
// isolates and marks, zero-width and invisible characters, line and paragraph separators, BOM)
// are shown as \u escapes: a reviewer sees every character of what they approve.
const HIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u2028-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB]/g;
const escapeChar = (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");

// JSON text: raw tabs and new lines can only be whitespace between tokens (pretty() drops them).
function visibleJson(text) {
  return text.replace(HIDDEN, escapeChar);
}

// Plain text: backslashes too, so a written "\u202e" cannot pass for an escaped character.
function visibleText(text) {
  return String(text ?? "").replace(/\\/g, "\\\\").replace(/[\t\n\r]/g, escapeChar).replace(HIDDEN, escapeChar);
}

// Indents JSON text without parsing it: numbers stay exactly as they will be forwarded
// (JSON.parse would show 9007199254740993 as 9007199254740992).
function pretty(json) {
  let out = "";
  let depth = 0;
  let inString = false;
  let escaped = false;
  const newline = () => "\n" + "  ".repeat(depth);
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      out += c;
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "{" || c === "[") {
      let next = i + 1;
      while (" \t\n\r".includes(json[next] ?? "x")) next++;
      if (json[next] === (c === "{" ? "}" : "]")) {
        out += c + json[next];
        i = next;
      } else {
        depth++;
        out += c + newline();
      }
    } else if (c === "}" || c === "]") {
      depth--;
      out += newline() + c;
    } else if (c === ",") {
      out += c + newline();
    } else if (c === ":") {
      out += ": ";
    } else if (!" \t\n\r".includes(c)) {
      out += c;
    }
  }
  return out;
}

function argumentsText(approval) {
  if (approval.arguments_json == null) return "(not kept once decided; the audit log has the call)";
  let text = pretty(visibleJson(approval.arguments_json));
  if (approval.other_params != null) {
    text += "\n\nother params, forwarded with the call:\n" + pretty(visibleJson(approval.other_params));
  }
  return text;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = visibleText(text);
  return td;
}

function row(approval) {
  const tr = document.createElement("tr");
  tr.dataset.id = approval.id;
  tr.dataset.status = approval.status;
  tr.append(cell(approval.status, "status " + approval.status));
  tr.append(cell(approval.tool, "tool"));
  tr.append(cell((approval.agent || "anonymous") + " / " + String(approval.session).slice(0, 8)));
  const args = document.createElement("td");
  const pre = document.createElement("pre");
  pre.className = "arguments";
  pre.textContent = argumentsText(approval);
  args.append(pre);
  tr.append(args);
  tr.append(cell(approval.rule + ": " + approval.reason));
  tr.append(cell(approval.expires_at, "muted"));
  const decision = document.createElement("td");
  if (approval.status === "pending") {
    const reason = document.createElement("input");
    reason.className = "reason";
    reason.placeholder = "reason (optional)";
    const yes = document.createElement("button");
    yes.className = "approve";
    yes.textContent = "Approve";
    yes.onclick = () => decide(approval.id, "approve", reason.value);
    const no = document.createElement("button");
    no.className = "reject";
    no.textContent = "Reject";
    no.onclick = () => decide(approval.id, "reject", reason.value);
    decision.append(reason, " ", yes, " ", no);
  } else {
    decision.textContent = [approval.decided_by, approval.decision_reason].filter(Boolean).map(visibleText).join(": ");
  }
  tr.append(decision);
  return tr;
}

// Changed definitions are shown as JSON text through cell(), hidden characters escaped: a
// poisoned description is read as it is, never rendered.
async function refreshPins() {
  const response = await api("/admin/pins");
  if (!response.ok) return;
  const pins = await response.json();
  const rows = pins.broken.map((pin) => {
    const tr = document.createElement("tr");
    tr.append(cell(pin.tool), cell(pin.problem),
      cell(pin.reviewed ? JSON.stringify(pin.reviewed) : "(not seen by this gateway)", "json"),
      cell(JSON.stringify(pin.definition), "json"));
    return tr;
  });
  $("#pins tbody").replaceChildren(...rows);
  $("#pins").hidden = rows.length === 0;
}

async function refresh() {
  refreshPins();
  const response = await api("/admin/approvals");
  if (response.status === 401) {
    $("#error").textContent = "The admin token was not accepted.";
    $("#queue").hidden = true;
    return false;
  }
  const approvals = await response.json();
  $("#error").textContent = "";
  $("#who").textContent = "signed in";
  const body = $("#queue tbody");
  body.replaceChildren(...approvals.map(row));
  $("#queue").hidden = approvals.length === 0;
  $("#empty").hidden = approvals.length !== 0;
  return true;
}

async function decide(id, verdict, reason) {
  const response = await api(`/admin/approvals/${encodeURIComponent(id)}/${verdict}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(reason ? { reason } : {}),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    $("#error").textContent = problem.error || `The ${verdict} failed (HTTP ${response.status}).`;
  }
  await refresh();
}

// EventSource cannot send an Authorization header, so the live feed is read with fetch.
async function follow() {
  if (state.stream) state.stream.abort();
  state.stream = new AbortController();
  try {
    const response = await api("/admin/approvals/events", { signal: state.stream.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const events = buffered.split("\n\n");
      buffered = events.pop();
      if (events.some((e) => e.includes("event: approval"))) await refresh();
    }
  } catch (err) {
    if (err.name === "AbortError") return;
  }
  setTimeout(follow, 2000);
}

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("mcpgate-admin-token", state.token);
  if (await refresh()) follow();
});

if (state.token) refresh().then((ok) => ok && follow());
