// Citizen chat. Every message is rendered as text (textContent); the only markup
// produced is line breaks, **bold**, and links to paths on this same site.
(function () {
  "use strict";
  var LIMIT = 500;
  var GAP_MS = 5 * 60 * 1000;
  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), input = $("input"), sendBtn = $("send"), banner = $("banner"), typing = $("typing");
  var lastTs = 0, clauseIndex = {}, sending = false, retryTimer = null, retryDelay = 2000;

  function store(key, value) { try { if (value === undefined) return localStorage.getItem(key); localStorage.setItem(key, value); } catch (e) { return null; } }

  function newSenderId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  var sender = store("ordos.sender");
  if (!/^[0-9a-f]{32}$/.test(sender || "")) { sender = newSenderId(); store("ordos.sender", sender); }

  function outbox() { try { return JSON.parse(store("ordos.outbox") || "[]"); } catch (e) { return []; } }
  function saveOutbox(items) { store("ordos.outbox", JSON.stringify(items)); }

  // -- rendering --------------------------------------------------------------
  function appendInline(parent, line) {
    // **bold** and [text](/same-site/path); everything else is plain text.
    var re = /\*\*([^*]+)\*\*|\[([^\]]+)\]\((\/[^\s)]*)\)/g, pos = 0, m;
    while ((m = re.exec(line)) !== null) {
      if (m.index > pos) parent.appendChild(document.createTextNode(line.slice(pos, m.index)));
      if (m[1] !== undefined) {
        var b = document.createElement("strong"); b.textContent = m[1]; parent.appendChild(b);
      } else if (/^\/(?!\/)/.test(m[3])) {
        var a = document.createElement("a"); a.textContent = m[2]; a.href = m[3]; parent.appendChild(a);
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

  function post(message) {
    return fetch("/api/chat", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ sender: sender, message: message })
    }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    });
  }

  function flush() {
    if (sending) return;
    var items = outbox();
    if (!items.length) { hideBanner(); return; }
    sending = true;
    typing.hidden = false;
    var item = items[0];
    post(item.text).then(function (res) {
      sending = false; typing.hidden = true; retryDelay = 2000;
      saveOutbox(outbox().filter(function (x) { return x.id !== item.id; }));
      var pendingRow = document.querySelector('[data-outbox="' + item.id + '"]');
      if (pendingRow) { pendingRow.classList.remove("pending"); pendingRow.removeAttribute("data-outbox"); }
      hideBanner();
      if (res.status === 200) {
        (res.body.messages || []).forEach(function (m) {
          addMessage("bot", m.text, { buttons: m.buttons, custom: m.custom });
        });
      } else {
        var err = (res.body && res.body.error && res.body.error.message_zh) || "发送失败，请稍后再试。";
        addMessage("bot", err);
      }
      flush();
    }).catch(function () {
      sending = false; typing.hidden = true;
      showBanner("网络连接中断，消息会在恢复后自动发送，不会丢失。");
      clearTimeout(retryTimer);
      retryTimer = setTimeout(flush, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }
  window.addEventListener("online", function () { retryDelay = 2000; flush(); });
  window.addEventListener("offline", function () { showBanner("网络连接中断，消息会在恢复后自动发送，不会丢失。"); });

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
  input.addEventListener("input", updateLimit);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    if (input.value.length > LIMIT) { updateLimit(); return; }
    var text = input.value;
    input.value = ""; updateLimit();
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
      var later = messages.slice(i + 1).some(function (x) { return x.from === "user"; });
      addMessage(m.from, m.text, { ts: m.ts ? m.ts * 1000 : undefined, buttons: m.buttons, custom: m.custom, used: later });
    });
  }

  function welcome() {
    return fetch("/api/welcome").then(function (r) { return r.json(); }).then(function (w) {
      addMessage("bot", w.text, { buttons: w.buttons });
    });
  }

  function start() {
    fetch("/api/clauses").then(function (r) { return r.json(); }).then(function (d) {
      (d.clauses || []).forEach(function (c) { clauseIndex[c.id] = c; });
    }).catch(function () {}).then(function () {
      return fetch("/api/history?sender=" + sender).then(function (r) { return r.ok ? r.json() : { messages: [] }; });
    }).catch(function () { return { messages: [] }; }).then(function (h) {
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
