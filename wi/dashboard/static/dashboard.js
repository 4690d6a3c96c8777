// The dashboard: reads /ui/api/stream (Server-Sent Events over fetch, so the platform token goes in the
// Authorization header) and renders each update. Data only ever goes into the page as text.
"use strict";

const TOKEN_KEY = "wi-platform-token";
const TIMELINE_SHOWN = 300;
const RECONNECT_MS = 2000;
const noticeStates = new Map(); // notice_id -> its state badges
const noticeEntries = new Map(); // notice_id -> its own timeline entry (a notice no decision listed yet)
let selected = null; // "tenant/workload" shown in the workload panel

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function status(text, live = false) {
  $("status").textContent = text;
  $("status").classList.toggle("live", live);
}

function time(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

// --- the connection ----------------------------------------------------------------------------

function token() {
  const fromAddress = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromAddress) {
    sessionStorage.setItem(TOKEN_KEY, fromAddress);
    history.replaceState(null, "", location.pathname); // keep it out of the address bar
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function follow() {
  const secret = token();
  if (!secret) {
    $("connect").hidden = false;
    status("Give a platform token to connect");
    return;
  }
  $("connect").hidden = true;
  status("Connecting…");
  let reply;
  try {
    reply = await fetch("/ui/api/stream", { headers: { Authorization: `Bearer ${secret}` } });
  } catch (error) {
    return retry(`Disconnected (${error.message})`);
  }
  if (reply.status === 401 || reply.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("connect").hidden = false;
    status("That token is not a valid platform token");
    $("token").focus();
    return;
  }
  if (!reply.ok) return retry(`The platform answered ${reply.status}`);
  status("Live", true);
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        handle(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    return retry(`Disconnected (${error.message})`);
  }
  retry("Disconnected");
}

function retry(why) {
  status(`${why}; reconnecting…`);
  setTimeout(follow, RECONNECT_MS);
}

function handle(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  if (!data.length) return; // a comment: keep-alive
  const body = JSON.parse(data.join("\n"));
  if (event === "snapshot") snapshot(body);
  else update(body);
}

// --- rendering ---------------------------------------------------------------------------------

function snapshot(state) {
  fleet(state.fleet);
  $("power").replaceChildren();
  for (const domain of state.power) powerDomain(domain.domain, domain.budget_watts, domain.readings);
  $("timeline").replaceChildren();
  noticeStates.clear();
  noticeEntries.clear();
  for (const entry of state.timeline) update(entry);
  $("workloads").replaceChildren();
  for (const { tenant, workload } of state.workloads) workloadButton(tenant, workload);
}

function update(entry) {
  if (entry.type === "decision") decision(entry);
  else if (entry.type === "notice") notice(entry);
  else if (entry.type === "verdict") verdict(entry);
  else if (entry.type === "fleet") fleet(entry.fleet);
  else if (entry.type === "power") powerReading(entry);
  else if (entry.type === "workload") workloadChanged(entry.tenant, entry.workload);
}

function fleet(rows) {
  const body = $("fleet").tBodies[0];
  body.replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        {},
        ...[row.region, row.pool, row.servers, row.cores, row.booked, row.free, row.instances].map(
          (value, index) => (index === 0 ? el("th", { scope: "row" }, String(value)) : el("td", {}, String(value))),
        ),
      ),
    ),
  );
}

const powerReadings = new Map(); // domain -> { budget, readings }

function powerDomain(domain, budget, readings) {
  powerReadings.set(domain, { budget, readings: [...readings] });
  drawPower(domain);
}

function powerReading(reading) {
  const known = powerReadings.get(reading.domain) || { budget: reading.cap_watts, readings: [] };
  known.readings.push(reading);
  known.readings = known.readings.slice(-120);
  powerReadings.set(reading.domain, known);
  drawPower(reading.domain);
}

function drawPower(domain) {
  const { budget, readings } = powerReadings.get(domain);
  const last = readings[readings.length - 1] || {};
  const top = Math.max(budget || 1, ...readings.map((r) => Math.max(r.draw_watts || 0, r.cap_watts || 0)));
  const line = (field) => {
    const known = readings
      .map((r, i) => [readings.length > 1 ? (i * 100) / (readings.length - 1) : 0, r[field]])
      .filter(([, watts]) => watts !== null && watts !== undefined)
      .map(([x, watts]) => [x, 30 - (watts * 28) / top]);
    // A step line: each reading holds until the next; the last one to the right edge.
    const points = known.flatMap(([x, y], i) => (i ? [[x, known[i - 1][1]], [x, y]] : [[0, y]]));
    if (points.length) points.push([100, points[points.length - 1][1]]);
    const svgLine = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    svgLine.setAttribute("class", field === "draw_watts" ? "draw" : "cap");
    svgLine.setAttribute("points", points.map((point) => point.join(",")).join(" "));
    return svgLine;
  };
  const draw = last.draw_watts === null || last.draw_watts === undefined ? "unknown" : `${last.draw_watts} W`;
  const summary = `${domain}: draw ${draw}, cap ${last.cap_watts ?? budget} W (budget ${budget} W)`;
  const chart = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  chart.setAttribute("viewBox", "0 0 100 32");
  chart.setAttribute("preserveAspectRatio", "none");
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", `${summary}, over the last ${readings.length} readings`);
  chart.append(line("cap_watts"), line("draw_watts"));
  const item = el("li", { "data-domain": domain }, el("div", {}, summary), chart);
  const existing = $("power").querySelector(`[data-domain="${CSS.escape(domain)}"]`);
  if (existing) existing.replaceWith(item);
  else $("power").append(item);
}

function stateBadge(noticeId, state, drill) {
  const badge = el("span", { class: `state ${state}` }, state);
  const badges = noticeStates.get(noticeId) || [];
  badges.push(badge);
  noticeStates.set(noticeId, badges);
  return drill ? el("span", {}, badge, el("span", { class: "drill" }, " drill")) : badge;
}

function entry(at, what, ...rest) {
  const item = el("li", {}, el("span", { class: "when" }, time(at)), el("span", { class: "what" }, what), ...rest);
  const timeline = $("timeline");
  timeline.prepend(item);
  while (timeline.children.length > TIMELINE_SHOWN) timeline.lastChild.remove();
  return item;
}

function about(tenant, workload) {
  return tenant ? `${tenant}/${workload}` : "(operator)";
}

function decision(d) {
  const item = entry(d.decided_at, `${d.service} ${d.action}`, `${about(d.tenant, d.workload)}: ${d.summary}`);
  if (d.reasons.length) {
    item.append(el("details", {}, el("summary", {}, "Why"), el("ul", {}, ...d.reasons.map((r) => el("li", {}, r)))));
  }
  if (d.notices.length) {
    const sent = d.notices.map((n) => {
      noticeEntries.get(n.notice_id)?.remove();
      noticeEntries.delete(n.notice_id);
      const deadline = n.deadline ? `, deadline ${time(n.deadline)}` : "";
      return el("li", {}, `${n.notice_kind} notice to ${about(n.tenant, n.workload)}${deadline} `, stateBadge(n.notice_id, "pending"));
    });
    item.append(el("ul", { "aria-label": "Notices sent" }, ...sent));
  }
}

function notice(n) {
  if (noticeStates.has(n.notice_id)) return;
  const item = entry(new Date().toISOString(), `${n.notice_kind} notice`, `to ${about(n.tenant, n.workload)} `);
  item.append(stateBadge(n.notice_id, n.state));
  noticeEntries.set(n.notice_id, item);
}

function verdict(v) {
  for (const badge of noticeStates.get(v.notice_id) || []) {
    badge.textContent = v.state;
    badge.className = `state ${v.state}`;
  }
  const drill = v.drill ? el("span", { class: "drill" }, " (drill)") : "";
  entry(new Date().toISOString(), `${v.response}`, `${about(v.tenant, v.workload)} answered its ${v.notice_kind} notice: `, stateBadge(v.notice_id, v.state), drill);
}

// --- workloads ---------------------------------------------------------------------------------

function workloadButton(tenant, workload) {
  const key = `${tenant}/${workload}`;
  if ($("workloads").querySelector(`[data-key="${CSS.escape(key)}"]`)) return;
  const button = el("button", { type: "button", "data-key": key, "aria-pressed": String(key === selected) }, key);
  button.addEventListener("click", () => choose(key));
  const items = [...$("workloads").children, el("li", {}, button)];
  items.sort((a, b) => a.textContent.localeCompare(b.textContent));
  $("workloads").replaceChildren(...items);
}

function workloadChanged(tenant, workload) {
  workloadButton(tenant, workload);
  if (`${tenant}/${workload}` === selected) show(selected);
}

function choose(key) {
  selected = key;
  for (const button of $("workloads").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.key === key));
  }
  show(key);
}

async function show(key) {
  const reply = await fetch(`/ui/api/workloads/${key}`, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
  });
  if (!reply.ok || key !== selected) return;
  const { hints, notices } = await reply.json();
  const rows = [
    ...hints.workload_hints.map((h) => ["workload", h]),
    ...Object.entries(hints.instance_hints).flatMap(([instance, list]) => list.map((h) => [instance, h])),
  ];
  const fields = (h) =>
    Object.entries(h)
      .filter(([name]) => !["kind", "tenant", "workload", "hint_id", "instance", "issued_at"].includes(name))
      .map(([name, value]) => `${name}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ");
  const panel = $("workload");
  panel.replaceChildren(
    el("h2", { id: "workload-title" }, key),
    el("h3", {}, "Effective hints"),
    rows.length
      ? el(
          "table",
          {},
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Kind"), el("th", { scope: "col" }, "Scope"), el("th", { scope: "col" }, "Fields"))),
          el("tbody", {}, ...rows.map(([scope, h]) => el("tr", {}, el("th", { scope: "row" }, h.kind), el("td", {}, scope), el("td", {}, fields(h))))),
        )
      : el("p", { class: "help" }, "No hints in effect: the defaults apply."),
    el("h3", {}, "Open notices"),
    notices.length
      ? el(
          "ul",
          {},
          ...notices.map((d) =>
            el("li", {}, `${d.notice.kind} ${d.notice.notice_id}`, d.deadline ? `, deadline ${time(d.deadline)} ` : " ", el("span", { class: `state ${d.state}` }, d.state)),
          ),
        )
      : el("p", { class: "help" }, "No open notices."),
  );
}

// --- start -------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("connect").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    follow();
  });
  follow();
});
