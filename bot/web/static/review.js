// Review workspace: keyboard-first work on items and groups. Plain ES module, no build step.
// Pages are rendered on the server (autoescaped); everything this script writes goes in with
// textContent, never as HTML, so a question containing markup stays text.

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const csrf = $('meta[name="csrf-token"]').content;
const toast = $("#review-status");

const STATUS_KEYS = { d: "done", i: "ignored", p: "pending", u: "new" };
const STATUS_LABELS = { new: "待处理", pending: "待定", accepted: "已归入意图", new_topic: "新主题", done: "已处理", ignored: "忽略" };
const DIALOG_KEYS = { a: "assign-dialog", n: "topic-dialog", t: "tag-dialog", m: "note-dialog" };

function say(text) {
  toast.textContent = "";
  // A fresh text node each time, so screen readers announce a repeated message too.
  window.setTimeout(() => { toast.textContent = text; }, 30);
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body),
  });
  if (resp.status === 401) {
    location.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("登录已超时");
  }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data?.error?.message_zh || "操作失败，请重试");
  return data;
}

// ---------------------------------------------------------------- rows and selection
const itemTable = $("#items");
const groupTable = $("#groups");
const groupBox = $("#group");
const table = itemTable || groupTable;
const rowSelector = groupTable ? "tr.group-row" : "tr.item-row";
let current = 0;

function rows() {
  return table ? $$(rowSelector, table) : [];
}

function focusRow(index, { scroll = true } = {}) {
  const all = rows();
  if (!all.length) return;
  current = Math.max(0, Math.min(index, all.length - 1));
  all.forEach((row, i) => {
    row.tabIndex = i === current ? 0 : -1;
    row.classList.toggle("current", i === current);
  });
  all[current].focus({ preventScroll: !scroll });
  if (scroll) all[current].scrollIntoView({ block: "nearest" });
}

function idsOf(row) {
  if (row.dataset.ids) return row.dataset.ids.split(",").map(Number);
  return [Number(row.dataset.id)];
}

function checkedRows() {
  return rows().filter((row) => $("input.select", row)?.checked);
}

// What an action works on: the checked rows; else the whole group (group page); else the current row.
function targetIds() {
  const checked = checkedRows();
  if (checked.length) return checked.flatMap(idsOf);
  if (groupBox) return groupBox.dataset.ids.split(",").map(Number);
  const row = rows()[current];
  return row ? idsOf(row) : [];
}

function toggleRow(row) {
  const box = row && $("input.select", row);
  if (box) box.checked = !box.checked;
}

function openCurrent() {
  const row = rows()[current];
  if (!row) return;
  if (row.dataset.href) location.href = row.dataset.href;
  else $("a", row)?.click();
}

if (table) {
  rows().forEach((row, i) => {
    row.addEventListener("focus", () => { if (current !== i) focusRow(i, { scroll: false }); });
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, input, button")) return;
      focusRow(i, { scroll: false });
    });
  });
  const all = $("input.select-all", table);
  all?.addEventListener("change", () => rows().forEach((row) => {
    const box = $("input.select", row);
    if (box) box.checked = all.checked;
  }));
  if (rows().length) rows()[0].tabIndex = 0;
}

// ---------------------------------------------------------------- results on the page
function updateRows(ids, result) {
  const wanted = new Set(ids);
  for (const row of $$("tr.item-row")) {
    if (!wanted.has(Number(row.dataset.id))) continue;
    if (result.status) {
      row.className = row.className.replace(/status-\S+/, "status-" + result.status);
      const label = $(".status-label", row);
      if (label) label.textContent = result.status_label || STATUS_LABELS[result.status] || "";
      const assigned = $(".assigned", row);
      if (assigned) assigned.textContent = result.assigned_intent ? "→ " + result.assigned_label : "";
    }
    if (result.tag !== undefined) {
      const tags = $(".tags", row);
      const existing = $$(".tag", tags).find((t) => t.textContent === result.tag);
      if (result.removed) existing?.remove();
      else if (!existing) {
        const span = document.createElement("span");
        span.className = "tag";
        span.textContent = result.tag;
        tags.append(span);
      }
    }
    if (result.note !== undefined) {
      const note = $(".note-text", row);
      if (note) note.textContent = result.note;
    }
  }
}

async function act(action, value, ids = targetIds()) {
  if (!ids.length) { say("请先选择条目"); return false; }
  try {
    const result = await post("/review/api/items", { action, value, ids });
    if (action === "assign") result.assigned_label = intentLabel(value);
    if (action === "untag") result.removed = true;
    updateRows(result.ids, result);
    const what = {
      status: `设为「${result.status_label}」`, assign: `归入意图「${intentLabel(value)}」`, topic: "标为新主题",
      tag: `加上标签「${result.tag}」`, untag: `移除标签「${result.tag}」`, note: "写入备注",
    }[action];
    say(`已将 ${result.count} 条${what}`);
    return true;
  } catch (error) {
    say(error.message);
    return false;
  }
}

function intentLabel(name) {
  const option = $$("#intent-list option").find((o) => o.value === name);
  return option ? option.textContent : name;
}

// ---------------------------------------------------------------- dialogs
let dialogIds = [];

function openDialog(id) {
  const dialog = document.getElementById(id);
  if (!dialog) return;
  dialogIds = targetIds();
  if (!dialogIds.length) { say("请先选择条目"); return; }
  const count = $(".target-count", dialog);
  if (count) count.textContent = `作用于 ${dialogIds.length} 条`;
  $("form", dialog)?.reset();
  dialog.showModal();
  $("input, textarea, select", dialog)?.focus();
}

for (const form of $$("form.dialog-form")) {
  const dialog = form.closest("dialog");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.submitter;
    if (button?.value === "cancel") { dialog.close(); return; }
    let action = form.dataset.action;
    let value;
    if (action === "assign") {
      value = form.elements.value.value.trim();
      if (!$$("#intent-list option").some((o) => o.value === value)) {
        $("#assign-label").textContent = "没有这个意图，请从列表中选择";
        return;
      }
    } else if (action === "topic") {
      const clauses = [...form.elements.clauses.selectedOptions].map((o) => o.value);
      value = { title: form.elements.title.value, draft_answer: form.elements.draft_answer.value, clauses };
    } else {
      value = form.elements.value.value;
      if (action === "tag" && button?.value === "untag") action = "untag";
    }
    if (await act(action, value, dialogIds)) dialog.close();
  });
}

const assignInput = $("#assign-intent");
assignInput?.addEventListener("input", () => {
  const name = assignInput.value.trim();
  const option = $$("#intent-list option").find((o) => o.value === name);
  $("#assign-label").textContent = option ? "主题：" + option.textContent : "";
});

for (const opener of $$("[data-open]")) {
  opener.addEventListener("click", () => document.getElementById(opener.dataset.open)?.showModal());
}

// ---------------------------------------------------------------- re-check against the current model
async function recheck(ids) {
  if (!ids.length) return;
  const out = $("#recheck-results");
  say("正在用当前模型复核……");
  try {
    const data = await post("/review/api/groups/recheck", { ids });
    if (!data.available) {
      say(data.message);
      if (out) out.textContent = data.message;
      return;
    }
    const label = data.coverage.label;
    const coverage = $("#coverage") || $(".coverage", rows()[current]);
    if (coverage) {
      coverage.textContent = label;
      coverage.className = "coverage coverage-" + data.coverage.state;
    }
    if (out) {
      out.textContent = "";
      const list = document.createElement("ul");
      for (const r of data.results) {
        const li = document.createElement("li");
        li.textContent = `${r.text} → ${r.label}（${r.confidence.toFixed(2)}）${r.answered ? "能回答" : "不能回答"}`;
        list.append(li);
      }
      out.append(list);
    }
    say(`复核完成：${label}`);
  } catch (error) {
    say(error.message);
  }
}

$("#recheck")?.addEventListener("click", () => recheck(groupBox.dataset.ids.split(",").map(Number)));

// ---------------------------------------------------------------- export check
const validateButton = $("#validate-export");
validateButton?.addEventListener("click", async () => {
  const out = $("#validate-output");
  validateButton.disabled = true;
  say("正在校验，约需 30 秒……");
  try {
    const data = await post("/review/api/export/validate", {});
    out.hidden = false;
    out.textContent = (data.ok ? "校验通过：" : "校验未通过：") + `${data.examples} 句\n` + data.output;
    say(data.ok ? "校验通过" : "校验未通过，详见下方输出");
  } catch (error) {
    say(error.message);
  } finally {
    validateButton.disabled = false;
  }
});

// ---------------------------------------------------------------- keyboard
function handleKey(key, shift) {
  if (key === "?") { $("#keys-dialog")?.showModal(); return true; }
  if (key === "/") { const q = $("#filter-q"); if (q) { q.focus(); q.select(); return true; } return false; }
  if (key === "[" || key === "]") {
    const link = $(`.pager a[data-key="${key}"]`);
    if (link) { location.href = link.href; return true; }
    return false;
  }
  if (key === "j" || key === "ArrowDown" || key === "k" || key === "ArrowUp") {
    if (!table) return false;
    // The first press lands on the current row (the first, on arrival); later ones move.
    const inside = table.contains(document.activeElement);
    const step = inside ? (key === "j" || key === "ArrowDown" ? 1 : -1) : 0;
    focusRow(current + step);
    return true;
  }
  if (key === "x" || key === "X") {
    if (shift) {
      const all = rows();
      const on = !all.every((row) => $("input.select", row)?.checked);
      all.forEach((row) => { const box = $("input.select", row); if (box) box.checked = on; });
    } else toggleRow(rows()[current]);
    return true;
  }
  if (key === "Enter" || key === "o") { openCurrent(); return true; }
  if (key === "r") {
    if (groupBox) recheck(groupBox.dataset.ids.split(",").map(Number));
    else if (groupTable && rows()[current]) recheck(idsOf(rows()[current]));
    else return false;
    return true;
  }
  if (!itemTable && !groupTable) return false;
  if (DIALOG_KEYS[key]) { openDialog(DIALOG_KEYS[key]); return true; }
  if (STATUS_KEYS[key]) { act("status", STATUS_KEYS[key]); return true; }
  return false;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
  if ($("dialog[open]")) return;   // a dialog handles its own keys (Esc closes it)
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const arrows = event.key === "ArrowDown" || event.key === "ArrowUp";
  if (arrows && !(table && table.contains(target))) return;   // arrows scroll the page outside the list
  if (event.key === "Enter" && target.closest("a, button")) return;
  if (handleKey(event.key, event.shiftKey)) event.preventDefault();
});

for (const button of $$(".toolbar [data-key]")) {
  button.addEventListener("click", () => handleKey(button.dataset.key, false));
}
