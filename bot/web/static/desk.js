// Hotline desk: search as you type, the answer card, what the assistant would do,
// the eligibility checker and the department directory. Plain ES module, no build step.
// Text from the server goes in with textContent; only the search's `highlighted`
// field (HTML-escaped by the server, matches in <mark>) is set as HTML.

const SEARCH_DEBOUNCE_MS = 120;
const PARSE_DEBOUNCE_MS = 350;
const CHECK_DEBOUNCE_MS = 120;
const NO_RESULT_AFTER_MS = 1500;
const STATUS = { eligible: "符合条件", ineligible: "不符合条件", unknown: "还需确认" };
const MARK = { true: "✓", false: "✗", null: "？" };

const $ = (selector, root = document) => root.querySelector(selector);
const csrf = $('meta[name="csrf-token"]').content;
const hotline = $('meta[name="hotline"]').content;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.headers["x-csrf-token"] = csrf;
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    location.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname);
    throw new Error("登录已超时");
  }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw Object.assign(new Error(data?.error?.message_zh || "请求失败，请重试"), { status: resp.status });
  return data;
}

// ---------------------------------------------------------------- search
const box = $("#q");
const results = $("#results");
const searchStatus = $("#search-status");
const notFound = $("#not-found");
let items = [];
let active = -1;
let searchTimer = 0;
let noResultTimer = 0;
let searchAbort = null;
let shownQuery = "";

box.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, SEARCH_DEBOUNCE_MS);
  scheduleParse();
});

async function runSearch() {
  const query = box.value.trim();
  searchAbort?.abort();
  clearTimeout(noResultTimer);
  if (!query) {
    showResults({ answers: [], clauses: [] }, "");
    return;
  }
  searchAbort = new AbortController();
  try {
    const data = await api(`/desk/api/search?q=${encodeURIComponent(query)}&limit=8`, { signal: searchAbort.signal });
    if (box.value.trim() !== query) return; // typed on meanwhile: a newer search is coming
    showResults(data, query);
  } catch (err) {
    if (err.name !== "AbortError") searchStatus.textContent = err.message;
  }
}

function departmentLine(d) {
  const parts = [];
  if (d.handler) parts.push(`承办：${d.handler}`);
  const lead = d.lead.filter((x) => x !== d.handler);
  if (lead.length) parts.push(`牵头：${lead.join("、")}`);
  if (!parts.length && d.responsible.length) parts.push(`负责：${d.responsible.slice(0, 3).join("、")}`);
  return parts.join(" · ");
}

function option(item, index) {
  const snippet = el("p", { class: "snippet" });
  snippet.innerHTML = item.highlighted; // HTML-escaped by the server; matches wrapped in <mark>
  return el("div", { role: "option", id: `opt-${index}`, class: `hit ${item.kind}`, "aria-selected": "false",
                     dataset: { index: String(index), id: item.id } },
    el("p", { class: "hit-title" }, el("span", { class: "kind", text: item.kind === "answer" ? "答复" : "原文" }),
       el("span", { text: item.kind === "answer" ? item.title : `${item.citation} ${item.title}` })),
    snippet,
    el("p", { class: "meta", text: [item.kind === "answer" ? item.citation : "", departmentLine(item.departments)]
      .filter(Boolean).join(" · ") }));
}

function showResults(data, query) {
  items = [...data.answers, ...data.clauses];
  active = items.length ? 0 : -1;
  shownQuery = query;
  const groups = [];
  if (data.answers.length) {
    groups.push(el("div", { role: "group", "aria-labelledby": "g-answers" },
      el("p", { id: "g-answers", class: "group", text: `答复（${data.answers.length}）` }),
      ...data.answers.map((a, i) => option(a, i))));
  }
  if (data.clauses.length) {
    const offset = data.answers.length;
    groups.push(el("div", { role: "group", "aria-labelledby": "g-clauses" },
      el("p", { id: "g-clauses", class: "group", text: `政策原文（${data.clauses.length}）` }),
      ...data.clauses.map((c, i) => option(c, offset + i))));
  }
  results.replaceChildren(...groups);
  results.dataset.query = query;
  box.setAttribute("aria-expanded", items.length ? "true" : "false");
  highlightActive();
  notFound.hidden = !query;
  if (!query) searchStatus.textContent = "";
  else if (!data.answers.length) {
    searchStatus.textContent = data.clauses.length ? "没有匹配的答复，下面是相关政策原文。" : "没有找到。可换个说法、用拼音首字母，或点“找不到”反馈。";
    noResultTimer = setTimeout(() => reportNoResult(query), NO_RESULT_AFTER_MS);
  } else searchStatus.textContent = `${data.answers.length} 条答复，${data.clauses.length} 条政策原文`;
}

async function reportNoResult(query) {
  if (box.value.trim() !== query) return; // only a search the agent stopped at
  try { await api("/desk/api/no-result", { method: "POST", body: { query } }); } catch { /* best effort */ }
}

function highlightActive() {
  results.querySelectorAll('[role="option"]').forEach((node) => {
    node.setAttribute("aria-selected", String(Number(node.dataset.index) === active));
  });
  if (active >= 0) {
    box.setAttribute("aria-activedescendant", `opt-${active}`);
    $(`#opt-${active}`)?.scrollIntoView({ block: "nearest" });
  } else box.removeAttribute("aria-activedescendant");
}

function move(step) {
  if (!items.length) return;
  active = (active + step + items.length) % items.length;
  highlightActive();
}

results.addEventListener("click", (event) => {
  const node = event.target.closest('[role="option"]');
  if (node) open(Number(node.dataset.index));
});

box.addEventListener("keydown", (event) => {
  if (event.isComposing) return; // the IME owns these keys while composing
  if (event.key === "ArrowDown") { event.preventDefault(); move(1); }
  else if (event.key === "ArrowUp") { event.preventDefault(); move(-1); }
  else if (event.key === "Enter") {
    event.preventDefault();
    clearTimeout(searchTimer);
    if (results.dataset.query !== box.value.trim()) runSearch().then(() => open(Math.max(active, 0)));
    else open(Math.max(active, 0));
  }
});

function clearSearch() {
  box.value = "";
  searchAbort?.abort();
  clearTimeout(searchTimer);
  clearTimeout(noResultTimer);
  showResults({ answers: [], clauses: [] }, "");
  showParse(null);
}

document.addEventListener("keydown", (event) => {
  if (event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
  const inField = event.target.closest?.("input, textarea, select, [contenteditable]");
  if (event.key === "/" && !inField) {
    event.preventDefault();
    box.focus();
    box.select();
  } else if (event.key === "Escape" && (!inField || event.target === box || event.target.id === "flag-note")) {
    event.preventDefault();
    clearSearch();
    box.focus();
  } else if ((event.key === "c" || event.key === "C") && !inField && current) {
    event.preventDefault();
    copyCurrent();
  }
});

// ---------------------------------------------------------------- card
const card = $("#card");
const cardStatus = $("#card-status");
let current = null;

function open(index) {
  const item = items[index];
  if (!item) return;
  active = index;
  highlightActive();
  current = item;
  $("#card-empty").hidden = true;
  card.hidden = false;
  $("#card-title").textContent = item.kind === "answer" ? item.title : `${item.citation} ${item.title}`;
  $("#card-cite").textContent = `依据：${item.citation}`;
  $("#card-script-box").hidden = !(item.kind === "answer" && item.script);
  $("#card-script").textContent = item.script || "";
  $("#card-answer-box").hidden = item.kind !== "answer";
  $("#card-answer").textContent = item.kind === "answer" ? item.text : "";
  const clauses = item.kind === "answer" ? item.clauses : [item];
  $("#card-clauses").replaceChildren(...clauses.map((c) =>
    el("blockquote", { class: "clause" }, el("p", { class: "clause-head", text: `${c.citation} ${c.title}` }),
       el("p", { text: c.text }))));
  const d = item.departments;
  const rows = [];
  if (d.handler) rows.push(["承办部门", d.handler + (d.reason ? `（${d.reason}）` : "")]);
  const lead = d.lead.filter((x) => x !== d.handler);
  if (lead.length) rows.push([d.handler ? "牵头协调" : "牵头部门", lead.join("、")]);
  if (d.responsible.length) rows.push(["按职责分工负责", d.responsible.join("、")]);
  if (!rows.length) rows.push(["部门", `方案未列明，可转 ${hotline}`]);
  $("#card-departments").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  cardStatus.textContent = "";
  $("#flag-note").value = "";
  card.focus();
}

async function copyCurrent() {
  if (!current) return;
  try {
    await navigator.clipboard.writeText(current.copy);
  } catch {
    // Plain HTTP on another host has no clipboard API: copy through a selection.
    const area = el("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
    area.value = current.copy;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    card.focus();
  }
  cardStatus.textContent = "已复制答复（含依据和“以官方发布的政策原文为准”）。";
}

$("#copy").addEventListener("click", copyCurrent);

async function sendFlag(flag, target) {
  const body = { flag, query: shownQuery || box.value.trim(), note: $("#flag-note").value.trim() };
  if (target) Object.assign(body, { target_kind: target.kind, target_id: target.id });
  const data = await api("/desk/api/flag", { method: "POST", body });
  return `已记录“${data.label}”，政策组会复核。`;
}

card.querySelectorAll("[data-flag]").forEach((button) => button.addEventListener("click", async () => {
  try { cardStatus.textContent = await sendFlag(button.dataset.flag, current); }
  catch (err) { cardStatus.textContent = err.message; }
}));

notFound.addEventListener("click", async () => {
  try { searchStatus.textContent = await sendFlag("not_found", null); }
  catch (err) { searchStatus.textContent = err.message; }
});

// ---------------------------------------------------------------- what the assistant would do
const parseBox = $("#parse");
let parseTimer = 0;
let parseAbort = null;

function scheduleParse() {
  clearTimeout(parseTimer);
  parseTimer = setTimeout(runParse, PARSE_DEBOUNCE_MS);
}

async function runParse() {
  const text = box.value.trim();
  parseAbort?.abort();
  if (!text) { showParse(null); return; }
  parseAbort = new AbortController();
  try {
    const data = await api(`/desk/api/parse?q=${encodeURIComponent(text)}`, { signal: parseAbort.signal });
    if (box.value.trim() === text) showParse(data);
  } catch (err) {
    if (err.name !== "AbortError") showParse({ available: false, message: err.message });
  }
}

const percent = (x) => `${Math.round(x * 100)}%`;

function showParse(data) {
  if (!data) {
    parseBox.replaceChildren(el("p", { class: "muted", text: "输入查询后显示助手识别的意图和把握。" }));
    return;
  }
  if (!data.available) {
    parseBox.replaceChildren(el("p", { class: "unavailable", dataset: { state: "unavailable" }, text: data.message }));
    return;
  }
  const top = data.intent;
  const unsure = top.confidence < 0.5;
  parseBox.replaceChildren(
    el("p", { class: "intent", dataset: { state: "available" } }, el("strong", { text: top.label }),
       el("span", { class: "muted", text: ` ${top.name} · 把握 ${percent(top.confidence)}` })),
    unsure ? el("p", { class: "warn", text: "助手把握不大：来电人这样问，机器人可能答偏。" }) : null,
    data.alternatives.length ? el("p", { class: "muted", text: "其次：" + data.alternatives
      .map((a) => `${a.label} ${percent(a.confidence)}`).join("；") }) : null,
    data.entities.length ? el("p", { class: "muted", text: "识别到：" + data.entities
      .map((e) => `${e.entity}=${e.value}`).join("，") }) : null);
}

// ---------------------------------------------------------------- eligibility checker
const checker = JSON.parse($("#checker-data").textContent);
const benefitSelect = $("#benefit");
const factsForm = $("#facts");
const verdictBox = $("#verdict");
const values = {};
let checkTimer = 0;
let checkAbort = null;

const benefitById = Object.fromEntries(checker.benefits.map((b) => [b.id, b]));
const factsInView = () => (benefitSelect.value ? benefitById[benefitSelect.value].facts : checker.order);
const askFor = (fact) => benefitById[benefitSelect.value]?.asks[fact] || checker.facts[fact].ask;

function choiceField(fact, spec, choices) {
  const name = `f-${fact}`;
  const current = values[fact] === undefined ? "" : String(values[fact]);
  return el("fieldset", { class: "fact", id: `field-${fact}`, "aria-describedby": `ask-${fact}` },
    el("legend", { text: spec.label }),
    el("p", { class: "ask", id: `ask-${fact}`, text: askFor(fact) }),
    el("div", { class: "choices" }, ...choices.map(([value, label]) => {
      const id = `${name}-${value || "unknown"}`;
      const input = el("input", { type: "radio", name, id, value, checked: current === value });
      input.addEventListener("change", () => setValue(fact, value === "" ? undefined
        : value === "true" ? true : value === "false" ? false : value));
      return el("span", { class: "choice" }, input, el("label", { for: id, text: label }));
    })));
}

function inputField(fact, spec) {
  const id = `field-${fact}`;
  const attrs = { id, name: fact, "aria-describedby": `ask-${fact}` };
  const input = spec.type === "date"
    ? el("input", { ...attrs, type: "date" })
    : el("input", { ...attrs, type: "number", inputmode: "numeric", min: spec.min, max: spec.max, step: 1 });
  input.value = values[fact] ?? "";
  input.addEventListener("input", () => setValue(fact, input.value === "" ? undefined
    : spec.type === "date" ? input.value : Number(input.value)));
  return el("div", { class: "fact" }, el("label", { for: id, text: spec.label }),
    el("p", { class: "ask", id: `ask-${fact}`, text: askFor(fact) }), input);
}

function buildForm() {
  factsForm.replaceChildren(...factsInView().map((fact) => {
    const spec = checker.facts[fact];
    if (spec.type === "bool") return choiceField(fact, spec, [["", "未知"], ["true", "是"], ["false", "否"]]);
    if (spec.type === "enum") return choiceField(fact, spec, [["", "未知"], ...Object.entries(spec.values)]);
    return inputField(fact, spec);
  }));
  scheduleCheck();
}

function setValue(fact, value) {
  if (value === undefined || Number.isNaN(value)) delete values[fact];
  else values[fact] = value;
  scheduleCheck();
}

function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(runCheck, CHECK_DEBOUNCE_MS);
}

async function runCheck() {
  checkAbort?.abort();
  checkAbort = new AbortController();
  const body = { facts: { ...values } };
  if (benefitSelect.value) body.benefits = [benefitSelect.value];
  try {
    const data = await api("/desk/api/eligibility", { method: "POST", body, signal: checkAbort.signal });
    showVerdicts(data.results);
  } catch (err) {
    if (err.name !== "AbortError") verdictBox.replaceChildren(el("p", { class: "error", role: "alert", text: err.message }));
  }
}

function nextQuestion(r) {
  if (!r.next_question) return null;
  const go = el("button", { type: "button", class: "quiet", text: "去填写" });
  go.addEventListener("click", () => $(`#field-${r.next_question.fact} input, input#field-${r.next_question.fact}`)?.focus());
  return el("p", { class: "next" }, el("strong", { text: "下一个要问：" }), el("span", { class: "ask-text", text: r.next_question.ask }), " ", go);
}

function reasonList(r, onlyDecisive) {
  const reasons = onlyDecisive ? r.reasons.filter((x) => x.met === false) : r.reasons;
  return el("ul", { class: "reasons" }, ...reasons.map((x) =>
    el("li", { class: `met-${x.met}` }, el("span", { class: "mark", "aria-hidden": "true", text: MARK[x.met] }),
       el("span", { class: "visually-hidden", text: x.met === true ? "满足：" : x.met === false ? "不满足：" : "未知：" }),
       el("span", { text: x.condition }), el("span", { class: "cite", text: ` ${x.citation}` }))));
}

function showVerdicts(list) {
  const single = list.length === 1;
  const order = { eligible: 0, unknown: 1, ineligible: 2 };
  const sorted = single ? list : [...list].sort((a, b) => order[a.status] - order[b.status]);
  verdictBox.replaceChildren(...sorted.map((r) => el("section", { class: `verdict ${r.status}`, dataset: { benefit: r.benefit } },
    el("h3", {}, el("span", { text: r.name }), el("span", { class: "pill", text: STATUS[r.status] })),
    single || r.status === "ineligible" ? reasonList(r, !single) : null,
    r.status === "unknown" ? nextQuestion(r) : null,
    single && r.amount ? el("p", {}, el("strong", { text: "内容：" }), r.amount) : null,
    single && r.note ? el("p", { class: "muted", text: r.note }) : null,
    single ? el("p", { class: "muted", text: `依据：${r.citation}` + (r.departments.lead.length
      ? ` · 牵头：${r.departments.lead.join("、")}` : "") }) : null)));
}

benefitSelect.addEventListener("change", buildForm);
$("#checker-clear").addEventListener("click", () => {
  for (const key of Object.keys(values)) delete values[key];
  buildForm();
});
buildForm();

// ---------------------------------------------------------------- tabs and directory
const tabs = [...document.querySelectorAll('[role="tab"]')];
function selectTab(tab) {
  for (const t of tabs) {
    const selected = t === tab;
    t.setAttribute("aria-selected", String(selected));
    t.tabIndex = selected ? 0 : -1;
    $(`#${t.getAttribute("aria-controls")}`).hidden = !selected;
  }
  tab.focus();
}
tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      selectTab(tabs[(i + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length]);
    }
  });
});

const deptFilter = $("#dept-filter");
const departments = [...document.querySelectorAll("#directory > .dept")];
deptFilter.addEventListener("input", () => {
  const words = deptFilter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const node of departments) {
    node.hidden = !words.every((w) => node.dataset.search.includes(w));
    shown += node.hidden ? 0 : 1;
  }
  $("#dept-count").textContent = words.length ? `${shown} 个部门` : "";
});

box.focus();
