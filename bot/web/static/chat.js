// Citizen chat. Every message is rendered as text (textContent); the only markup
// produced is line breaks, **bold**, and links to paths on this same site.
//
// A message waits in the outbox until the server has answered it: it is sent
// again (with growing pauses) while the network, the server or the assistant is
// unavailable or asks us to slow down; a message the server can never accept is
// shown as not sent, with the reason, and its text goes back into the input box.
(function () {
  "use strict";
  var LIMIT = 500;
  var GAP_MS = 5 * 60 * 1000;
  var ID_HEADER = "X-Conversation-Id";
  var FIRST_RETRY_MS = 2000, MAX_RETRY_MS = 60000;
  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), input = $("input"), sendBtn = $("send"), banner = $("banner"), typing = $("typing");
  var lastTs = 0, clauseIndex = {}, sending = false, retryTimer = null, retryDelay = FIRST_RETRY_MS, refusedIds = 0;

  // localStorage where the browser allows it (an iframe on another site may not
  // get it); otherwise this page's memory, and the banner says to keep the page open.
  var memory = {};
  var persistent = (function () {
    try { localStorage.setItem("ordos.probe", "1"); localStorage.removeItem("ordos.probe"); return true; } catch (e) { return false; }
  })();
  function store(key, value) {
    if (value === undefined) {
      if (Object.prototype.hasOwnProperty.call(memory, key)) return memory[key];
      try { return localStorage.getItem(key); } catch (e) { return null; }
    }
    try {
      if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value);
      delete memory[key];
    } catch (e) { memory[key] = value; }
  }
  var KEPT = persistent ? "不会丢失。" : "请不要关闭本页面。";
  var OFFLINE = "网络连接中断，消息会在恢复后自动发送，" + KEPT;
  var BUSY = "智能助手暂时繁忙，您的消息已保留，稍后会自动重新发送，" + KEPT;
  var SLOW_DOWN = "您发送得太快了，消息已保留，稍后会自动发送，" + KEPT;

  // The conversation id is issued and signed by the server (POST /api/session) and
  // travels in a request header, never in a URL.
  var conversation = store("ordos.conversation"), pendingSession = null;
  store("ordos.sender", null);  // ids the page made up itself are no longer accepted
  function session() {
    if (conversation) return Promise.resolve(conversation);
    if (!pendingSession) {
      pendingSession = fetch("/api/session", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
        .then(function (r) {
          if (r.ok) return r.json();
          var err = new Error("session " + r.status);
          err.response = r;
          throw err;
        })
        .then(function (b) {
          if (!b || typeof b.conversation_id !== "string") throw new Error("session");
          conversation = b.conversation_id; store("ordos.conversation", conversation);
          return conversation;
        });
      pendingSession.then(function () { pendingSession = null; }, function () { pendingSession = null; });
    }
    return pendingSession;
  }
  function forgetConversation() { conversation = null; store("ordos.conversation", null); }
  function withId(headers, id) { headers[ID_HEADER] = id; return headers; }

  function outbox() { try { return JSON.parse(store("ordos.outbox") || "[]"); } catch (e) { return []; } }
  function saveOutbox(items) { store("ordos.outbox", JSON.stringify(items)); }
  function removeFromOutbox(item) { saveOutbox(outbox().filter(function (x) { return x.id !== item.id; })); }
  function pendingRow(item) { return document.querySelector('[data-outbox="' + item.id + '"]'); }

  // -- rendering --------------------------------------------------------------
  // A path on this site, or null: "//host" and "/\host" (browsers read "\" as "/")
  // lead to another site, and so may anything the URL parser resolves elsewhere.
  function sameSiteHref(path) {
    if (!/^\/(?![\/\\])[^\\\s\u0000-\u001f\u007f]*$/.test(path)) return null;
    var url;
    try { url = new URL(path, location.href); } catch (e) { return null; }
    return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
  }

  function appendInline(parent, line) {
    // **bold** and [text](/same-site/path); everything else is plain text.
    var re = /\*\*([^*]+)\*\*|\[([^\]]+)\]\((\/[^\s)]*)\)/g, pos = 0, m, href;
    while ((m = re.exec(line)) !== null) {
      if (m.index > pos) parent.appendChild(document.createTextNode(line.slice(pos, m.index)));
      if (m[1] !== undefined) {
        var b = document.createElement("strong"); b.textContent = m[1]; parent.appendChild(b);
      } else if ((href = sameSiteHref(m[3])) !== null) {
        var a = document.createElement("a"); a.textContent = m[2]; a.href = href; parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(m[0]));
      }
      pos = re.lastIndex;
    }
    if (pos < line.length) parent.appendChild(document.createTextNode(line.slice(pos)));
  }

  function renderText(el, text) {
    String(text || "").split("\n").forEach(function (line, i) {
      if (i > 0) el.appendChild(document.createElement("br"));
      appendInline(el, line);
    });
  }

  function timeLabel(ts) {
    var d = new Date(ts), now = new Date();
    var hm = ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
    return d.toDateString() === now.toDateString() ? hm : (d.getMonth() + 1) + "月" + d.getDate() + "日 " + hm;
  }

  function maybeTime(ts) {
    if (!lastTs || ts - lastTs > GAP_MS) {
      var t = document.createElement("div");
      t.className = "time"; t.textContent = timeLabel(ts);
      log.appendChild(t);
    }
    lastTs = ts;
  }

  function addMessage(from, text, opts) {
    opts = opts || {};
    var ts = opts.ts || Date.now();
    maybeTime(ts);
    var row = document.createElement("div");
    row.className = "row " + from;
    var av = document.createElement("span");
    av.className = "avatar"; av.setAttribute("aria-hidden", "true"); av.textContent = from === "bot" ? "助" : "我";
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    var who = document.createElement("span");
    who.className = "visually-hidden"; who.textContent = from === "bot" ? "助手说：" : "我说：";
    bubble.appendChild(who);
    renderText(bubble, text);
    var custom = opts.custom || {};
    if (Array.isArray(custom.clauses) && custom.clauses.length) {
      var cites = document.createElement("div");
      cites.className = "cites";
      custom.clauses.forEach(function (id) {
        var c = document.createElement("button");
        c.type = "button"; c.className = "cite";
        c.textContent = "查看原文 " + (clauseIndex[id] ? clauseIndex[id].label : id);
        c.setAttribute("aria-label", "查看政策原文 " + (clauseIndex[id] ? clauseIndex[id].label : id));
        c.addEventListener("click", function () { openClause(id, c); });
        cites.appendChild(c);
      });
      bubble.appendChild(cites);
    }
    row.appendChild(av); row.appendChild(bubble);
    log.appendChild(row);
    if (opts.pending) { row.classList.add("pending"); }
    if (from === "bot" && opts.buttons && opts.buttons.length) addQuickReplies(opts.buttons, opts.used);
    log.scrollTop = log.scrollHeight;
    return row;
  }

  function addQuickReplies(buttons, used) {
    var wrap = document.createElement("div");
    wrap.className = "quick"; wrap.setAttribute("role", "group"); wrap.setAttribute("aria-label", "快捷回复");
    buttons.forEach(function (b) {
      var btn = document.createElement("button");
      btn.type = "button"; btn.textContent = b.title;
      btn.disabled = !!used;
      btn.addEventListener("click", function () {
        Array.prototype.forEach.call(wrap.querySelectorAll("button"), function (x) { x.disabled = true; });
        btn.classList.add("chosen");
        send(b.payload || b.title);
      });
      wrap.appendChild(btn);
    });
    log.appendChild(wrap);
  }

  // -- clause sheet -------------------------------------------------------------
  var lastFocus = null;
  function openSheet(sheet, focusEl) {
    lastFocus = document.activeElement;
    sheet.hidden = false;
    (focusEl || sheet.querySelector("button")).focus();
  }
  function closeSheet(sheet) { sheet.hidden = true; if (lastFocus) lastFocus.focus(); }

  function openClause(id) {
    fetch("/api/clauses/" + encodeURIComponent(id)).then(function (r) { return r.json(); }).then(function (c) {
      if (!c || c.error) throw new Error("clause");
      $("sheet-title").textContent = "《实施方案》" + c.label + " " + c.title;
      $("sheet-path").textContent = (c.path || []).join(" › ");
      $("sheet-text").textContent = c.text;
      $("sheet-depts").textContent = c.lead && c.lead.length ? "牵头：" + c.lead.join("、") + (c.responsible.length ? "；负责：" + c.responsible.join("、") : "") : "";
      openSheet($("sheet"), $("sheet-close"));
    }).catch(function () { showBanner("条款原文暂时无法打开，请稍后再试。"); });
  }
  $("sheet-close").addEventListener("click", function () { closeSheet($("sheet")); });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { if (!$("sheet").hidden) closeSheet($("sheet")); else if (!$("notice").hidden) closeSheet($("notice")); }
  });

  // -- connection --------------------------------------------------------------
  function showBanner(text) { banner.textContent = text; banner.hidden = false; }
  function hideBanner() { banner.hidden = true; banner.textContent = ""; }

  // The outbox item's id goes with the message, the same on every resend: a message the
  // assistant already has (its answer was lost on the way back) is answered again, never twice.
  function post(item) {
    return session().then(function (id) {
      return fetch("/api/chat", {
        method: "POST", headers: withId({ "content-type": "application/json" }, id),
        body: JSON.stringify({ message: item.text, message_id: item.id })
      });
    }, function (err) {
      if (err && err.response) return err.response;  // the server refused a new conversation: its answer counts
      throw err;
    }).then(function (r) {
      var res = { status: r.status, body: null, retryAfter: parseInt(r.headers.get("retry-after") || "", 10) };
      return r.json().then(function (body) { res.body = body; return res; }, function () { return res; });
    });
  }

  // Sent and answered: the message leaves the outbox.
  function delivered(item, messages) {
    removeFromOutbox(item);
    var row = pendingRow(item);
    if (row) { row.classList.remove("pending"); row.removeAttribute("data-outbox"); }
    messages.forEach(function (m) { addMessage("bot", m.text, { buttons: m.buttons, custom: m.custom }); });
  }

  // The server will never accept this message as it is: say why, and give the text back.
  function refused(item, reason) {
    removeFromOutbox(item);
    var row = pendingRow(item);
    if (row) {
      row.classList.remove("pending"); row.classList.add("failed"); row.removeAttribute("data-outbox");
      var note = document.createElement("div");
      note.className = "failed-note";
      note.textContent = "未发送：" + reason;
      var edit = document.createElement("button");
      edit.type = "button"; edit.className = "edit"; edit.textContent = "重新编辑";
      edit.addEventListener("click", function () { input.value = item.text; updateLimit(); saveDraft(); input.focus(); });
      note.appendChild(edit);
      row.querySelector(".bubble").appendChild(note);
    }
    if (!input.value.trim()) { input.value = item.text; updateLimit(); saveDraft(); }
  }

  // Not delivered yet: keep it and try again after a pause (the server's, or a growing one).
  function later(text, seconds) {
    showBanner(text);
    clearTimeout(retryTimer);
    var delay = seconds > 0 ? Math.min(seconds, 300) * 1000 : retryDelay;
    if (!(seconds > 0)) retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
    retryTimer = setTimeout(flush, delay + Math.floor(Math.random() * 500));
  }

  function flush() {
    if (sending) return;
    clearTimeout(retryTimer); retryTimer = null;
    var items = outbox();
    if (!items.length) { hideBanner(); return; }
    sending = true;
    typing.hidden = false;
    var item = items[0];
    post(item).then(function (res) {
      sending = false; typing.hidden = true;
      var error = (res.body && res.body.error) || {};
      if (res.status === 200 && res.body && Array.isArray(res.body.messages)) {
        retryDelay = FIRST_RETRY_MS; refusedIds = 0; hideBanner();
        delivered(item, res.body.messages);
        flush();
      } else if ((res.status === 400 || res.status === 403) && error.field === "conversation") {
        // The server no longer knows this conversation (e.g. its key changed): start a new one, same message.
        forgetConversation();
        if (++refusedIds > 2) later(BUSY); else flush();
      } else if (res.status === 429) {
        later(SLOW_DOWN, res.retryAfter || 10);
      } else if (res.status >= 400 && res.status < 500 && res.status !== 408) {
        refused(item, error.message_zh || "消息未能发送（错误 " + res.status + "）。");
        hideBanner();
        flush();
      } else {
        // 503 (the assistant is unavailable), any other server error: the message waits.
        later(res.status === 503 ? BUSY : OFFLINE);
      }
    }).catch(function () {
      sending = false; typing.hidden = true;
      later(OFFLINE);
    });
  }
  window.addEventListener("online", function () { retryDelay = FIRST_RETRY_MS; flush(); });
  window.addEventListener("offline", function () { showBanner(OFFLINE); });

  function send(text) {
    text = String(text || "").trim();
    if (!text) return;
    if (text.length > LIMIT) { updateLimit(); return; }
    var id = Date.now() + "-" + Math.random().toString(16).slice(2);
    var row = addMessage("user", text, { pending: true });
    row.setAttribute("data-outbox", id);
    saveOutbox(outbox().concat([{ id: id, text: text }]));
    flush();
  }

  // -- composer ----------------------------------------------------------------
  function updateLimit() {
    var n = input.value.length, el = $("limit");
    if (n > LIMIT) {
      el.textContent = "已输入" + n + "字，超过" + LIMIT + "字上限，请精简后再发送。";
      el.classList.add("over"); sendBtn.disabled = true; input.setAttribute("aria-invalid", "true");
    } else {
      el.textContent = n > LIMIT - 50 ? "还可输入" + (LIMIT - n) + "字" : "";
      el.classList.remove("over"); sendBtn.disabled = false; input.removeAttribute("aria-invalid");
    }
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }
  function saveDraft() { store("ordos.draft", input.value ? input.value : null); }
  input.addEventListener("input", function () { updateLimit(); saveDraft(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    if (input.value.length > LIMIT) { updateLimit(); return; }
    var text = input.value;
    input.value = ""; updateLimit(); saveDraft();
    send(text);
  });
  $("handoff").addEventListener("click", function () { send("转人工"); });

  var big = $("bigtext");
  function setBig(on) { document.documentElement.classList.toggle("big", on); big.setAttribute("aria-pressed", on ? "true" : "false"); store("ordos.big", on ? "1" : "0"); }
  big.addEventListener("click", function () { setBig(big.getAttribute("aria-pressed") !== "true"); });
  setBig(store("ordos.big") === "1");

  // Keep the input bar above the phone keyboard.
  if (window.visualViewport) {
    var fit = function () { $("app").style.height = window.visualViewport.height + "px"; log.scrollTop = log.scrollHeight; };
    window.visualViewport.addEventListener("resize", fit);
  }

  // -- start -------------------------------------------------------------------
  function restore(messages) {
    messages.forEach(function (m, i) {
      var answered = messages.slice(i + 1).some(function (x) { return x.from === "user"; });
      addMessage(m.from, m.text, { ts: m.ts ? m.ts * 1000 : undefined, buttons: m.buttons, custom: m.custom, used: answered });
    });
  }

  function welcome() {
    return fetch("/api/welcome").then(function (r) { return r.json(); }).then(function (w) {
      addMessage("bot", w.text, { buttons: w.buttons });
    });
  }

  function loadHistory() {
    if (!conversation) return Promise.resolve({ messages: [] });  // nothing said yet
    return fetch("/api/history", { headers: withId({}, conversation) }).then(function (r) {
      if (r.status === 400 || r.status === 403) { forgetConversation(); return { messages: [] }; }
      return r.ok ? r.json() : { messages: [] };
    });
  }

  function start() {
    var draft = store("ordos.draft");
    if (draft && !input.value) { input.value = draft; updateLimit(); }
    fetch("/api/clauses").then(function (r) { return r.json(); }).then(function (d) {
      (d.clauses || []).forEach(function (c) { clauseIndex[c.id] = c; });
    }).catch(function () {}).then(loadHistory).catch(function () { return { messages: [] }; }).then(function (h) {
      var msgs = (h && h.messages) || [];
      if (msgs.length) restore(msgs); else return welcome();
    }).catch(function () {}).then(function () {
      // Messages typed while offline (or before a reload) are still waiting.
      outbox().forEach(function (item) {
        var row = addMessage("user", item.text, { pending: true });
        row.setAttribute("data-outbox", item.id);
      });
      flush();
    });
    if (store("ordos.notice") !== "1") {
      openSheet($("notice"), $("notice-ok"));
    }
  }
  $("notice-ok").addEventListener("click", function () { store("ordos.notice", "1"); closeSheet($("notice")); input.focus(); });
  start();
})();
