/// The embeddable widget, served at `/widget.js`: `<script src="https://chat.example.com/widget.js" data-site="…">`.
/// Plain JavaScript and CSS, no external CDN. It draws a bubble and a chat window (full screen on narrow
/// screens), speaks Chinese or English, works from the keyboard (Enter sends, Escape closes, focus returns to the
/// bubble), keeps its session token in localStorage so a reload resumes the conversation, talks over a WebSocket
/// and falls back to HTTP long polling. Every text is put in the page with `textContent`, never as HTML.
enum WidgetScript {
    static let source = #"""
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__funnelChatLoaded) { return; }
  window.__funnelChatLoaded = true;
  var base = new URL(script.src, location.href);
  var origin = base.origin;
  var site = script.getAttribute("data-site") || "";
  var storageKey = "funnel-chat:" + site;
  var strings = {
    zh: { open: "在线咨询", title: "在线咨询", close: "关闭", send: "发送", placeholder: "输入消息…", skip: "跳过",
          offline: "连接中断，正在重试…", closed: "对话已结束，发送消息将开始新的对话。", you: "您", bot: "助手", operator: "顾问", system: "系统" },
    en: { open: "Chat with us", title: "Chat", close: "Close", send: "Send", placeholder: "Type a message…", skip: "Skip",
          offline: "Connection lost, retrying…", closed: "This conversation has ended; a new message starts a new one.", you: "You", bot: "Assistant", operator: "Advisor", system: "System" }
  };
  var lang = (script.getAttribute("data-lang") || navigator.language || "zh").toLowerCase().indexOf("en") === 0 ? "en" : "zh";
  function t(key) { return strings[lang][key]; }

  var css = [
    ".fnl-chat-bubble{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;",
    "background:#1f6feb;color:#fff;font:15px/1.2 system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".fnl-chat-bubble:focus-visible,.fnl-chat-panel button:focus-visible,.fnl-chat-input:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".fnl-chat-panel{position:fixed;right:20px;bottom:84px;z-index:2147483001;width:360px;height:520px;max-height:calc(100vh - 104px);display:flex;",
    "flex-direction:column;background:#fff;color:#1b1f24;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden;",
    "font:14px/1.45 system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif}",
    ".fnl-chat-panel[hidden]{display:none}",
    ".fnl-chat-header{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:#1f6feb;color:#fff;font-weight:600}",
    ".fnl-chat-header button{background:transparent;border:0;color:#fff;font-size:20px;cursor:pointer;line-height:1}",
    ".fnl-chat-log{flex:1;overflow-y:auto;padding:12px;background:#f6f8fa}",
    ".fnl-chat-msg{max-width:80%;margin:6px 0;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}",
    ".fnl-chat-msg-visitor{margin-left:auto;background:#1f6feb;color:#fff}",
    ".fnl-chat-msg-bot,.fnl-chat-msg-operator{background:#fff;border:1px solid #d0d7de}",
    ".fnl-chat-msg-system{margin:6px auto;background:transparent;color:#57606a;font-size:12px;text-align:center}",
    ".fnl-chat-who{display:block;font-size:11px;opacity:.7;margin-bottom:2px}",
    ".fnl-chat-options{display:flex;flex-wrap:wrap;gap:6px;padding:6px 12px 0}",
    ".fnl-chat-options button{border:1px solid #1f6feb;background:#fff;color:#1f6feb;border-radius:14px;padding:4px 10px;cursor:pointer}",
    ".fnl-chat-status{padding:4px 12px;font-size:12px;color:#9a6700}",
    ".fnl-chat-form{display:flex;gap:8px;padding:10px 12px;border-top:1px solid #d0d7de}",
    ".fnl-chat-input{flex:1;min-width:0;padding:8px 10px;border:1px solid #d0d7de;border-radius:8px;font:inherit}",
    ".fnl-chat-send{border:0;border-radius:8px;padding:8px 14px;background:#1f6feb;color:#fff;cursor:pointer;font:inherit}",
    "@media (max-width:480px){.fnl-chat-panel{right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}",
    ".fnl-chat-bubble{right:12px;bottom:12px}}"
  ].join("");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  var style = el("style");
  style.textContent = css;
  document.head.appendChild(style);

  var bubble = el("button", "fnl-chat-bubble", t("open"));
  bubble.type = "button";
  bubble.setAttribute("aria-haspopup", "dialog");
  bubble.setAttribute("aria-expanded", "false");
  var panel = el("div", "fnl-chat-panel");
  panel.hidden = true;
  panel.id = "fnl-chat-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", t("title"));
  bubble.setAttribute("aria-controls", panel.id);
  var header = el("div", "fnl-chat-header");
  var title = el("span", null, t("title"));
  var closeButton = el("button", "fnl-chat-close", "×");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", t("close"));
  header.appendChild(title);
  header.appendChild(closeButton);
  var log = el("div", "fnl-chat-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  var options = el("div", "fnl-chat-options");
  var status = el("div", "fnl-chat-status");
  status.setAttribute("role", "status");
  var form = el("form", "fnl-chat-form");
  var input = el("input", "fnl-chat-input");
  input.type = "text";
  input.maxLength = 1000;
  input.autocomplete = "off";
  input.placeholder = t("placeholder");
  input.setAttribute("aria-label", t("placeholder"));
  var send = el("button", "fnl-chat-send", t("send"));
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(options);
  panel.appendChild(status);
  panel.appendChild(form);
  document.body.appendChild(bubble);
  document.body.appendChild(panel);

  var token = null;
  try { token = localStorage.getItem(storageKey); } catch (e) { token = null; }
  var lastSeq = 0;
  var socket = null;
  var socketReady = false;
  var polling = false;
  var started = false;
  var closedConversation = false;
  var generation = 0;

  function utm() {
    var params = new URLSearchParams(location.search);
    var out = {};
    ["source", "medium", "campaign", "term", "content"].forEach(function (k) {
      var v = params.get("utm_" + k);
      if (v) { out[k] = v.slice(0, 200); }
    });
    return out;
  }

  function request(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (token) { headers.Authorization = "Bearer " + token; }
    return fetch(origin + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (json) {
          if (!response.ok) { var error = new Error(json.detail || response.statusText); error.code = json.code; error.status = response.status; throw error; }
          return json;
        });
      });
  }

  function render(messages) {
    (messages || []).forEach(function (m) {
      if (m.seq <= lastSeq) { return; }
      lastSeq = m.seq;
      var node = el("div", "fnl-chat-msg fnl-chat-msg-" + (/^(visitor|bot|operator|system)$/.test(m.author) ? m.author : "system"));
      node.setAttribute("data-seq", String(m.seq));
      if (m.author !== "system") { node.appendChild(el("span", "fnl-chat-who", t(m.author === "visitor" ? "you" : m.author) || "")); }
      node.appendChild(document.createTextNode(m.body));
      log.appendChild(node);
    });
    log.scrollTop = log.scrollHeight;
  }

  function showState(state) {
    while (options.firstChild) { options.removeChild(options.firstChild); }
    closedConversation = !!state && state.status === "closed";
    status.textContent = closedConversation ? t("closed") : "";
    var q = state && state.question;
    if (!q) { return; }
    (q.options || []).forEach(function (option) {
      var b = el("button", null, option);
      b.type = "button";
      b.addEventListener("click", function () { submit({ text: option }); });
      options.appendChild(b);
    });
    if (!q.required) {
      var skip = el("button", "fnl-chat-skip", t("skip"));
      skip.type = "button";
      skip.addEventListener("click", function () { submit({ skip: true }); });
      options.appendChild(skip);
    }
    input.type = q.kind === "phone" ? "tel" : "text";
  }

  function apply(update) {
    if (!update) { return; }
    render(update.messages);
    if (update.state) { showState(update.state); }
  }

  function startSession() {
    generation += 1;
    var mine = generation;
    return request("POST", "/v1/chat/sessions", { site: site, token: token || undefined, page_url: location.href,
                                                    referrer_url: document.referrer || undefined, utm: utm(), locale: lang })
      .then(function (session) {
        if (mine !== generation) { return; }
        if (session.token !== token) {
          token = session.token;
          try { localStorage.setItem(storageKey, token); } catch (e) { /* private mode: the session lasts the page */ }
          lastSeq = 0;
          while (log.firstChild) { log.removeChild(log.firstChild); }
        }
        apply(session);
        connect(mine);
      });
  }

  function connect(mine) {
    if (socket) { try { socket.close(); } catch (e) { /* already closed */ } socket = null; }
    socketReady = false;
    if (!("WebSocket" in window)) { poll(mine); return; }
    var url = origin.replace(/^http/, "ws") + "/v1/chat/ws?site=" + encodeURIComponent(site);
    var opened = false;
    var ws;
    try { ws = new WebSocket(url); } catch (e) { poll(mine); return; }
    socket = ws;
    ws.onopen = function () {
      opened = true;
      ws.send(JSON.stringify({ type: "hello", token: token, after: lastSeq }));
      socketReady = true;
      status.textContent = closedConversation ? t("closed") : "";
    };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "update") { apply(frame); }
      if (frame.type === "error" && frame.code === "conversation_closed") { closedConversation = true; }
    };
    ws.onclose = function () {
      socketReady = false;
      if (mine !== generation) { return; }
      if (!opened) { poll(mine); return; }
      status.textContent = t("offline");
      setTimeout(function () { if (mine === generation) { connect(mine); } }, 2000);
    };
  }

  function poll(mine) {
    if (polling) { return; }
    polling = true;
    (function loop() {
      if (mine !== generation) { polling = false; return; }
      request("GET", "/v1/chat/messages?after=" + lastSeq + "&wait=25").then(function (update) {
        status.textContent = closedConversation ? t("closed") : "";
        apply(update);
        loop();
      }).catch(function () {
        status.textContent = t("offline");
        setTimeout(loop, 3000);
      });
    })();
  }

  function submit(body) {
    if (closedConversation) {
      closedConversation = false;
      return startSession().then(function () { submit(body); });
    }
    if (socketReady && socket && socket.readyState === 1) {
      socket.send(JSON.stringify(body.skip ? { type: "skip" } : { type: "message", text: body.text }));
      return Promise.resolve();
    }
    return request("POST", "/v1/chat/messages", body).then(apply).catch(function (error) {
      if (error.code === "conversation_closed" || error.code === "invalid_session") { return startSession().then(function () { submit(body); }); }
      status.textContent = error.message;
    });
  }

  function open() {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    input.focus();
    if (!started) {
      started = true;
      startSession().catch(function (error) { started = false; status.textContent = error.message; });
    }
  }

  function close() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    bubble.focus();
  }

  bubble.addEventListener("click", function () { if (panel.hidden) { open(); } else { close(); } });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") { close(); } });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    submit({ text: text });
  });
  window.FunnelChat = {
    open: open,
    close: close,
    /** How the widget talks to the service now: "websocket", "long-poll" or "none". */
    transport: function () { return socketReady ? "websocket" : (polling ? "long-poll" : "none"); }
  };
})();
"""#
}
