// orra-di web chat. Plain JavaScript, no build step, no third-party code.
// Everything the model, a tool or the store says is put into the page with
// textContent, never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "orra-di.api-key";
  const AGENT_STORAGE = "orra-di.agent";

  const $ = (id) => document.getElementById(id);
  const ui = {
    agent: $("agent"),
    agentAbout: $("agent-about"),
    sidebar: $("sidebar"),
    toggleSessions: $("toggle-sessions"),
    newChat: $("new-chat"),
    refresh: $("refresh-sessions"),
    sessions: $("sessions"),
    sessionsEmpty: $("sessions-empty"),
    keyPanel: $("key-panel"),
    keyForm: $("key-form"),
    keyInput: $("api-key"),
    forgetKey: $("forget-key"),
    whoami: $("whoami"),
    title: $("chat-title"),
    log: $("log"),
    status: $("status"),
    composer: $("composer"),
    message: $("message"),
    send: $("send"),
  };

  const state = {
    namespace: null, // the session shown, null for a chat not sent yet
    agents: [],
    busy: false,
    tools: new Map(), // call id -> the tool card's parts
    speaker: null, // the agent answering now (stored messages do not say which agent wrote them)
  };

  // -- HTTP -------------------------------------------------------------------

  // URLs are relative to the page, so the gateway can be mounted under a prefix.
  const url = (path) => new URL(path, document.baseURI).toString();

  function headers(extra) {
    const out = Object.assign({ Accept: "application/json" }, extra || {});
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) out.Authorization = "Bearer " + key;
    return out;
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function failure(response) {
    let code = "http_" + response.status;
    let message = response.status + " " + response.statusText;
    try {
      const body = await response.json();
      if (body && typeof body.error === "string") message = body.error;
      if (body && typeof body.code === "string") code = body.code;
    } catch (_) {
      /* not JSON: keep the status line */
    }
    if (response.status === 401) askForKey();
    return new ApiError(response.status, code, message);
  }

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.json !== undefined ? { "Content-Type": "application/json" } : {});
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    const response = await fetch(url(path), opts);
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  // -- status line, key ---------------------------------------------------------

  function say(text, bad) {
    ui.status.textContent = text || "";
    ui.status.classList.toggle("bad", Boolean(bad));
  }

  function askForKey() {
    ui.keyPanel.open = true;
    openSidebar(true);
    say("This server needs an API key: enter it under “API key”.", true);
  }

  async function whoami() {
    try {
      const me = await api("v1/whoami");
      ui.whoami.textContent = me.tenant
        ? "Tenant: " + me.tenant + (me.key ? " (key " + me.key + ")" : "")
        : me.key
          ? "Key " + me.key
          : "No key needed here.";
      return true;
    } catch (error) {
      ui.whoami.textContent = "";
      if (!(error instanceof ApiError && error.status === 401)) say(error.message, true);
      return false;
    }
  }

  // -- agents ---------------------------------------------------------------------

  async function loadAgents() {
    const body = await api("v1/agents");
    state.agents = body.agents || [];
    ui.agent.replaceChildren();
    const wanted = sessionStorage.getItem(AGENT_STORAGE);
    for (const agent of state.agents) {
      const option = document.createElement("option");
      option.value = agent.name;
      option.textContent = agent.name;
      ui.agent.append(option);
    }
    const names = state.agents.map((a) => a.name);
    ui.agent.value = names.includes(wanted) ? wanted : body.default || names[0] || "";
    describeAgent();
  }

  function describeAgent() {
    const agent = state.agents.find((a) => a.name === ui.agent.value);
    ui.agentAbout.textContent = agent ? agent.personality || "" : "";
  }

  // -- sessions -------------------------------------------------------------------

  async function loadSessions() {
    const body = await api("v1/sessions");
    const names = body.sessions || [];
    ui.sessions.replaceChildren();
    for (const name of names) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = name;
      button.dataset.namespace = name;
      if (name === state.namespace) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => {
        openSession(name).catch((error) => say(error.message, true));
        openSidebar(false);
      });
      item.append(button);
      ui.sessions.append(item);
    }
    ui.sessionsEmpty.hidden = names.length > 0;
  }

  function markCurrent() {
    for (const button of ui.sessions.querySelectorAll("button")) {
      if (button.dataset.namespace === state.namespace) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
    ui.title.textContent = state.namespace ? "Session " + state.namespace : "New chat";
    const hash = state.namespace ? "#session=" + encodeURIComponent(state.namespace) : "";
    if (location.hash !== hash) history.replaceState(null, "", location.pathname + location.search + hash);
  }

  function clearLog() {
    ui.log.replaceChildren();
    state.tools.clear();
    state.speaker = null;
  }

  function newChat() {
    if (state.busy) return;
    state.namespace = null;
    clearLog();
    markCurrent();
    say("");
    ui.message.focus();
  }

  async function openSession(namespace) {
    if (state.busy) return;
    const session = await api("v1/sessions/" + encodeURIComponent(namespace));
    state.namespace = session.namespace || namespace;
    await showSession(session);
    const count = session.message_count ?? (session.messages || []).length;
    say(count + (count === 1 ? " message" : " messages") + " in this session.");
  }

  async function showSession(session) {
    clearLog();
    markCurrent();
    for (const message of session.messages || []) renderStored(message);
    await showPendingApprovals();
    scrollDown();
  }

  // An answer given with no stream open (the page was reloaded while the run waited):
  // read the session again until the run has gone on to its final answer.
  async function follow(namespace) {
    let seen = -1;
    for (let i = 0; i < 120; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (state.busy || state.namespace !== namespace) return;
      let session;
      try {
        session = await api("v1/sessions/" + encodeURIComponent(namespace));
      } catch (_) {
        return;
      }
      const messages = session.messages || [];
      if (messages.length !== seen) {
        seen = messages.length;
        await showSession(session);
      }
      const last = messages[messages.length - 1];
      if (last && last.role === "assistant" && !(last.tool_calls || []).length) {
        say("The run has ended.");
        return;
      }
    }
  }

  function renderStored(message) {
    // Tool results travel in a user-role message with no text: show them on their cards.
    for (const result of message.tool_results || []) {
      setResult(toolCard(result.call_id, "tool"), result.content, result.is_error);
    }
    if (message.role === "user" || message.role === "assistant") {
      if (message.content) addMessage(message.role, message.content);
      for (const call of message.tool_calls || []) {
        const card = toolCard(call.id, call.name);
        setArguments(card, call.arguments);
        if (!card.result) setBadge(card, "no result", "waiting");
      }
    }
    // System messages are the agent's instructions: not shown.
  }

  async function showPendingApprovals() {
    if (!state.namespace) return;
    try {
      const query = "v1/approvals?namespace=" + encodeURIComponent(state.namespace);
      const body = await api(query);
      for (const approval of body.approvals || []) {
        if (approval.namespace === state.namespace) askApproval(approval);
      }
    } catch (_) {
      /* approvals are optional: a server without them lists none */
    }
  }

  // -- the conversation log --------------------------------------------------------

  function scrollDown() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function addMessage(role, text) {
    const box = document.createElement("div");
    box.className = "msg " + role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : role === "error" ? "Error" : state.speaker || "Assistant";
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    box.append(who, body);
    ui.log.append(box);
    scrollDown();
    return body;
  }

  function toolCard(id, name) {
    let card = state.tools.get(id);
    if (card) return card;
    const root = document.createElement("div");
    root.className = "tool";
    root.dataset.callId = id;
    const head = document.createElement("div");
    head.className = "tool-head";
    const label = document.createElement("span");
    label.className = "muted small";
    label.textContent = "Tool call";
    const title = document.createElement("span");
    title.className = "tool-name";
    title.textContent = name;
    const badge = document.createElement("span");
    badge.className = "badge running";
    badge.textContent = "running";
    head.append(label, title, badge);
    root.append(head);
    ui.log.append(root);
    card = { root, title, badge, args: null, result: null, approval: null };
    state.tools.set(id, card);
    scrollDown();
    return card;
  }

  function section(card, labelText, key) {
    if (!card[key]) {
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = labelText;
      const pre = document.createElement("pre");
      pre.className = key;
      if (key === "args") card.root.firstChild.after(label, pre); // arguments right under the name
      else card.root.append(label, pre);
      card[key] = pre;
      if (card.approval) card.root.append(card.approval); // keep the buttons last
    }
    return card[key];
  }

  function setArguments(card, args) {
    if (args === undefined || args === null) return;
    section(card, "Arguments", "args").textContent = JSON.stringify(args, null, 2);
  }

  function setBadge(card, text, kind) {
    card.badge.textContent = text;
    card.badge.className = "badge " + kind;
  }

  function setResult(card, content, isError) {
    section(card, isError ? "Error" : "Result", "result").textContent = content ?? "";
    setBadge(card, isError ? "failed" : "done", isError ? "failed" : "done");
    if (card.approval) {
      for (const control of card.approval.querySelectorAll("button, input")) control.disabled = true;
    }
    scrollDown();
  }

  function askApproval(approval) {
    const card = toolCard(approval.call_id, approval.tool_name);
    if (card.title.textContent === "tool") card.title.textContent = approval.tool_name;
    setArguments(card, approval.arguments);
    setBadge(card, "waiting for approval", "waiting");
    if (card.approval) return;
    const box = document.createElement("div");
    box.className = "approval";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Approve or deny " + approval.tool_name);
    const approve = document.createElement("button");
    approve.type = "button";
    approve.textContent = "Approve";
    const deny = document.createElement("button");
    deny.type = "button";
    deny.className = "deny";
    deny.textContent = "Deny";
    const reason = document.createElement("input");
    reason.type = "text";
    reason.placeholder = "Reason (optional)";
    reason.setAttribute("aria-label", "Reason for the decision");
    box.append(approve, deny, reason);
    card.root.append(box);
    card.approval = box;

    const decide = async (approved) => {
      for (const control of box.querySelectorAll("button, input")) control.disabled = true;
      try {
        const body = { approved };
        if (reason.value.trim()) body.reason = reason.value.trim();
        const answer = await api("v1/approvals/" + encodeURIComponent(approval.id), {
          method: "POST",
          json: body,
        });
        const status = answer.status || (approved ? "approved" : "denied");
        if (!card.result) setBadge(card, status, status === "approved" ? "approved" : "denied");
        const note = document.createElement("span");
        note.className = "small";
        note.textContent =
          (status === "approved" ? "Approved" : "Denied") +
          (answer.decided_by ? " by " + answer.decided_by : "") +
          (answer.reason ? ": " + answer.reason : ".");
        box.replaceChildren(note);
        say("Tool call " + approval.tool_name + " " + status + ".");
        if (!state.busy) follow(state.namespace); // no stream to tell us what happens next
      } catch (error) {
        for (const control of box.querySelectorAll("button, input")) control.disabled = false;
        say(error.message, true);
      }
    };
    approve.addEventListener("click", () => decide(true));
    deny.addEventListener("click", () => decide(false));
    say("The agent asks to run " + approval.tool_name + ": approve or deny it.");
    approve.focus({ preventScroll: true });
    scrollDown();
  }

  // -- streaming a chat ------------------------------------------------------------

  // Server-Sent Events over fetch: EventSource cannot POST a body.
  async function* sseEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let carry = ""; // a chunk's last "\r": the "\n" of its "\r\n" may open the next chunk
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let text = carry + value;
      carry = text.endsWith("\r") ? "\r" : "";
      if (carry) text = text.slice(0, -1);
      buffer += text.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue; // keep-alive comments
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") name = value;
          else if (field === "data") data.push(value);
        }
        if (data.length) yield { name, data: JSON.parse(data.join("\n")) };
      }
    }
  }

  function setBusy(busy) {
    state.busy = busy;
    ui.send.disabled = busy;
    ui.newChat.disabled = busy;
    ui.agent.disabled = busy;
    ui.log.setAttribute("aria-busy", busy ? "true" : "false");
  }

  async function chat(text) {
    setBusy(true);
    say("Sending…");
    addMessage("user", text);
    let answer = null; // the text element the current turn's deltas go into
    let ended = false;
    try {
      const request = { message: text, agent: ui.agent.value || undefined };
      if (state.namespace) request.namespace = state.namespace;
      const response = await fetch(url("v1/chat/stream"), {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify(request),
      });
      if (!response.ok) throw await failure(response);
      for await (const event of sseEvents(response.body)) {
        const data = event.data;
        switch (event.name) {
          case "start":
            state.speaker = data.agent || null;
            if (data.namespace && data.namespace !== state.namespace) {
              state.namespace = data.namespace;
              markCurrent();
              loadSessions().catch(() => {});
            }
            say("The agent is answering…");
            break;
          case "text_delta":
            if (!answer) answer = addMessage("assistant", "");
            answer.textContent += data.text;
            scrollDown();
            break;
          case "tool_call_started":
            answer = null; // text after the tools goes in a new bubble
            toolCard(data.id, data.name);
            say("Running " + data.name + "…");
            break;
          case "tool_approval_request":
            answer = null;
            askApproval(data);
            break;
          case "tool_call_completed":
            setResult(toolCard(data.id, "tool"), data.content, data.is_error);
            break;
          case "turn":
            for (const call of data.tool_calls || []) {
              const card = state.tools.get(call.id);
              if (card && !card.args) setArguments(card, call.arguments);
            }
            answer = null;
            break;
          case "end":
            ended = true;
            if (data.usage && typeof data.usage.total_tokens === "number") {
              say("Done: " + data.usage.total_tokens + " tokens.");
            } else {
              say("Done.");
            }
            break;
          case "error":
            ended = true;
            addMessage("error", data.error || "the run failed");
            say(data.code ? "Failed (" + data.code + ")." : "Failed.", true);
            break;
          default:
            break; // an event this page does not know: ignore it
        }
      }
      if (!ended) say("The stream was cut; the run goes on on the server: reopen the session to see it.", true);
    } catch (error) {
      addMessage("error", error.message);
      say(error instanceof ApiError ? "Failed (" + error.code + ")." : "Connection failed.", true);
    } finally {
      setBusy(false);
      ui.message.focus();
    }
  }

  // -- wiring ---------------------------------------------------------------------

  function openSidebar(open) {
    ui.sidebar.classList.toggle("open", open);
    ui.toggleSessions.setAttribute("aria-expanded", open ? "true" : "false");
  }

  ui.toggleSessions.addEventListener("click", () => {
    openSidebar(!ui.sidebar.classList.contains("open"));
  });
  ui.newChat.addEventListener("click", () => {
    newChat();
    openSidebar(false);
  });
  ui.refresh.addEventListener("click", () => loadSessions().catch((e) => say(e.message, true)));
  ui.agent.addEventListener("change", () => {
    sessionStorage.setItem(AGENT_STORAGE, ui.agent.value);
    describeAgent();
  });

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.message.value.trim();
    if (!text || state.busy) return;
    ui.message.value = "";
    chat(text);
  });
  ui.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });

  ui.keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.keyInput.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    start();
  });
  ui.forgetKey.addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    ui.keyInput.value = "";
    ui.whoami.textContent = "";
    start();
  });

  async function start() {
    say("");
    if (!(await whoami())) {
      // No (valid) key: show nothing of what an earlier key could see.
      state.agents = [];
      ui.agent.replaceChildren();
      ui.sessions.replaceChildren();
      state.namespace = null;
      clearLog();
      ui.title.textContent = "New chat";
      return;
    }
    try {
      await loadAgents();
      await loadSessions();
      const match = /^#session=(.+)$/.exec(location.hash);
      if (match) await openSession(decodeURIComponent(match[1]));
      else markCurrent();
      document.body.dataset.ready = "true";
    } catch (error) {
      say(error.message, true);
    }
  }

  start();
})();
