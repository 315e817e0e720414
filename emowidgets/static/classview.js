// ClassView: tiles per tracked face (click the name to rename, "calibrate" to fit that student's adapter),
// a stacked-area class chart, an attention list. Renders only from synced numbers (ids, names, scores,
// histories, label names); it never sees a pixel.

const SVG = "http://www.w3.org/2000/svg";
const STALE_MS = 500; // a tile whose scores are older than this shows their age

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function clock(seconds) {  // 75 -> "1:15"
  return `${Math.floor(seconds / 60)}:${String(Math.round(seconds % 60)).padStart(2, "0")}`;
}

function nameOf(model, id) {
  return model.get("names")[String(id)] || `#${id}`;
}

function labelsOf(model, id) {
  // the label set that scores this face: its own adapter's, the room adapter's, or the 7 base emotions
  const own = model.get("adapted")[String(id)];
  if (own) return { labels: own, adapter: "own" };
  const room = model.get("room_labels");
  return room.length ? { labels: room, adapter: "room" } : { labels: model.get("labels"), adapter: "" };
}

function sparkline(points, w = 120, h = 28) {
  // points: [[t_s (<= 0, seconds ago), valence -1..1], ...] over the last minute
  const s = svg("svg", { width: w, height: h, class: "emow-cv-spark", viewBox: `0 0 ${w} ${h}` });
  s.append(svg("line", { x1: 0, x2: w, y1: h / 2, y2: h / 2, class: "emow-cv-zero" }));
  if (points.length > 1) {
    const d = points.map(([t, v], i) => `${i ? "L" : "M"}${((t + 60) / 60) * w},${(1 - (v + 1) / 2) * h}`);
    s.append(svg("path", { d: d.join(""), class: "emow-cv-spark-line" }));
  }
  return s;
}

function chart(history, colors, labels, w = 520, h = 160) {
  // history rows: [t_s, share_0..share_6, faces_present]
  const s = svg("svg", { width: w, height: h + 18, class: "emow-cv-chart", viewBox: `0 0 ${w} ${h + 18}` });
  s.dataset.points = history.length;
  if (history.length < 2) return s;
  const t0 = history[0][0], t1 = history[history.length - 1][0];
  const x = (t) => ((t - t0) / Math.max(t1 - t0, 1)) * w;
  const base = history.map(() => 0);
  labels.forEach((label, k) => {
    const top = history.map((row, i) => base[i] + row[1 + k]);
    const up = history.map((row, i) => `${x(row[0])},${h * (1 - top[i])}`);
    const down = history.map((row, i) => `${x(row[0])},${h * (1 - base[i])}`).reverse();
    const poly = svg("polygon", { points: [...up, ...down].join(" "), fill: colors[k] });
    poly.append(svg("title"));
    poly.firstChild.textContent = label;
    s.append(poly);
    top.forEach((v, i) => { base[i] = v; });
  });
  const maxFaces = Math.max(1, ...history.map((r) => r[r.length - 1]));
  const line = history.map((r, i) => `${i ? "L" : "M"}${x(r[0])},${h * (1 - 0.9 * r[r.length - 1] / maxFaces)}`);
  s.append(svg("path", { d: line.join(""), class: "emow-cv-present" }));
  const caption = svg("text", { x: 0, y: h + 14, class: "emow-cv-axis" });
  caption.textContent = `last ${Math.round(t1 - t0)} s · black line: faces present (max ${maxFaces})`;
  s.append(caption);
  return s;
}

let views = 0; // class views rendered on this page: each gets its own datalist id

function render({ model, el }) {
  el.classList.add("emow-classview");
  const listId = `emow-cv-grids-${++views}`;
  el.innerHTML = `
    <div class="emow-cv-head"><span class="emow-cv-status"></span><span class="emow-cv-fps"></span>
      <span class="emow-cv-level"></span>
      <label><input type="checkbox" class="emow-cv-logging"> log numbers</label>
      <button class="emow-cv-calibrate-room" title="fit an adapter on every face in view">calibrate room</button>
      <label class="emow-cv-grid" title="the shared call's tile grid: auto (found in the frames), none, or rows × cols">
        gallery grid <input class="emow-cv-grid-input" list="${listId}" size="5" spellcheck="false"></label>
      <datalist id="${listId}"><option value="auto"><option value="none"><option value="7×7"><option value="6×6">
        <option value="5×5"><option value="4×4"></datalist>
      <span class="emow-cv-notice"></span></div>
    <div class="emow-cv-body">
      <div class="emow-cv-tiles"></div>
      <div class="emow-cv-panel">
        <div class="emow-cv-chartbox"></div><div class="emow-cv-legend"></div>
        <div class="emow-cv-presence"></div>
        <h4>Needs attention</h4><ul class="emow-cv-attention"></ul>
        <details class="emow-cv-left"><summary>left: <span class="emow-cv-left-count">0</span></summary>
          <ul class="emow-cv-left-list"></ul></details>
        <details class="emow-cv-settings"><summary>thresholds</summary>
          <label>negative ≥ <input type="number" step="0.05" min="0" max="1" data-trait="negative_threshold"></label>
          <label>over (s) <input type="number" step="1" min="1" data-trait="negative_seconds"></label>
          <label>absent &gt; (s) <input type="number" step="1" min="1" data-trait="absent_seconds"></label>
          <label>chart (min) <input type="number" step="1" min="1" data-trait="window_minutes"></label>
          <label>retire absent after (s) <input type="number" step="10" min="1" data-trait="retention_seconds"></label>
        </details>
      </div>
    </div>`;
  const $ = (sel) => el.querySelector(sel);
  const tiles = $(".emow-cv-tiles");
  let editing = null; // id whose name input is open: keep it across redraws

  function rename(id, tile) {
    editing = id;
    const input = document.createElement("input");
    input.className = "emow-cv-name-input";
    input.value = model.get("names")[String(id)] || "";
    input.placeholder = `#${id}`;
    const nameEl = tile.querySelector(".emow-cv-name");
    nameEl.replaceChildren(input);
    input.focus();
    const done = (save) => {
      if (editing !== id) return;
      editing = null;
      if (save) {
        const names = { ...model.get("names") };
        const value = input.value.trim();
        if (value) names[String(id)] = value; else delete names[String(id)];
        model.set("names", names);
        model.save_changes();
      }
      drawTiles();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") done(true);
      if (e.key === "Escape") done(false);
      e.stopPropagation(); // keep JupyterLab shortcuts out of the text box
    });
    input.addEventListener("blur", () => done(true));
  }

  function drawTiles() {
    if (editing !== null) return;
    const labels = model.get("labels"), colors = model.get("colors");
    tiles.replaceChildren(...model.get("faces").map((f) => {
      const [top, score] = f.top;
      const k = labels.indexOf(top); // -1 for an adapter's own label: drawn grey
      const scored = labelsOf(model, f.id);
      const named = Boolean(model.get("names")[String(f.id)]);
      const tile = document.createElement("div");
      tile.className = "emow-cv-tile" + (f.present ? "" : " emow-cv-absent");
      tile.dataset.id = f.id;
      tile.dataset.dominant = top;
      tile.dataset.labels = scored.labels.join(",");
      tile.dataset.adapter = scored.adapter;
      tile.style.borderColor = f.present ? (colors[k] || "#666") : "#ccc";
      tile.innerHTML = `<div class="emow-cv-top"><div class="emow-cv-name" title="click to name"></div>
        <button class="emow-cv-calibrate">calibrate</button></div><div class="emow-cv-emotion"></div>`;
      tile.querySelector(".emow-cv-name").textContent = nameOf(model, f.id);
      if (scored.adapter === "own") {
        const badge = document.createElement("span");
        badge.className = "emow-cv-badge";
        badge.textContent = "own";
        badge.title = `own adapter: ${scored.labels.join(", ")}`;
        tile.querySelector(".emow-cv-top").insertBefore(badge, tile.querySelector(".emow-cv-calibrate"));
      }
      const button = tile.querySelector(".emow-cv-calibrate");
      button.disabled = !named;
      button.title = named ? `calibrate ${nameOf(model, f.id)}: capture shots, train, apply`
        : "name this tile first (click its #id): adapters are kept by name";
      button.addEventListener("click", () => model.send({ type: "calibrate", id: f.id }));
      tile.querySelector(".emow-cv-emotion").textContent = f.present
        ? `${top} ${Math.round(100 * score)}%` : `absent ${Math.round(f.absent_s)} s`;
      if (f.present && f.age_ms > STALE_MS) { // scores kept from an earlier frame (the classification budget)
        const age = document.createElement("span");
        age.className = "emow-cv-age";
        age.dataset.age = f.age_ms;
        age.textContent = `${(f.age_ms / 1000).toFixed(1)} s ago`;
        tile.querySelector(".emow-cv-emotion").append(age);
      }
      tile.append(sparkline(f.spark));
      tile.querySelector(".emow-cv-name").addEventListener("click", () => rename(f.id, tile));
      return tile;
    }));
  }

  function drawPanel() {
    const labels = model.get("labels"), colors = model.get("colors"), history = model.get("history");
    $(".emow-cv-chartbox").replaceChildren(chart(history, colors, labels));
    $(".emow-cv-legend").innerHTML = labels.map((l, k) => `<span><i style="background:${colors[k]}"></i>${l}</span>`).join("");
    const faces = model.get("faces");
    const present = faces.filter((f) => f.present).length;
    const presence = $(".emow-cv-presence");
    presence.textContent = `${present} present, ${faces.length - present} absent`;
    presence.dataset.present = present;
    const list = $(".emow-cv-attention");
    list.replaceChildren(...model.get("attention").map((a) => {
      const li = document.createElement("li");
      li.dataset.id = a.id;
      li.textContent = `${nameOf(model, a.id)}: ${a.reason}`;
      return li;
    }));
    if (!list.children.length) list.innerHTML = '<li class="emow-cv-none">nobody</li>';
  }

  function drawLeft() {  // students absent longer than retention_seconds, most recent first
    const left = model.get("left");
    $(".emow-cv-left-count").textContent = left.length;
    $(".emow-cv-left-list").replaceChildren(...left.map((f) => {
      const li = document.createElement("li");
      li.dataset.id = f.id;
      li.textContent = `${f.name || `#${f.id}`}: ${clock(f.present_s)} in view, left at ${clock(f.left_s)}`;
      return li;
    }));
  }

  function drawGrid() { // the kernel's value (a refused one comes back as the old value, with a notice)
    const input = $(".emow-cv-grid-input");
    input.value = model.get("grid").replace("x", "×");
    input.dataset.grid = model.get("grid");
  }

  function drawHead() {
    const status = $(".emow-cv-status");
    status.textContent = model.get("status");
    status.dataset.status = model.get("status");
    $(".emow-cv-notice").textContent = model.get("notice");
    $(".emow-cv-fps").textContent = `${model.get("fps").toFixed(1)} fps`;
    $(".emow-cv-level").textContent = model.get("level");
    $(".emow-cv-level").hidden = !model.get("level");
    $(".emow-cv-logging").checked = model.get("logging");
    $(".emow-cv-logging").title = model.get("log_path");
    el.querySelectorAll("input[data-trait]").forEach((input) => {
      if (document.activeElement !== input) input.value = model.get(input.dataset.trait);
    });
  }

  $(".emow-cv-logging").addEventListener("change", (e) => { model.set("logging", e.target.checked); model.save_changes(); });
  $(".emow-cv-calibrate-room").addEventListener("click", () => model.send({ type: "calibrate", id: null }));
  const gridInput = $(".emow-cv-grid-input");
  gridInput.addEventListener("change", () => { model.set("grid", gridInput.value.trim()); model.save_changes(); });
  gridInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") gridInput.blur(); // "change" fires: the choice goes to the kernel
    if (e.key === "Escape") { drawGrid(); gridInput.blur(); }
    e.stopPropagation(); // keep JupyterLab shortcuts out of the text box
  });
  el.querySelectorAll("input[data-trait]").forEach((input) => {
    input.addEventListener("change", () => {
      const v = parseFloat(input.value);
      if (Number.isFinite(v)) { model.set(input.dataset.trait, v); model.save_changes(); }
    });
    input.addEventListener("keydown", (e) => e.stopPropagation());
  });

  const onFaces = () => { drawTiles(); drawPanel(); };
  const headEvents = "change:status change:notice change:fps change:level change:logging change:log_path change:negative_threshold " +
    "change:negative_seconds change:absent_seconds change:window_minutes change:retention_seconds";
  const faceEvents = "change:faces change:names change:adapted change:room_labels";
  model.on(faceEvents, onFaces);
  model.on("change:history change:attention", drawPanel);
  model.on("change:left", drawLeft);
  model.on(headEvents, drawHead);
  model.on("change:grid", drawGrid);
  drawHead(); drawGrid(); drawTiles(); drawPanel(); drawLeft();
  return () => {
    model.off(faceEvents, onFaces);
    model.off("change:history change:attention", drawPanel);
    model.off("change:left", drawLeft);
    model.off(headEvents, drawHead);
    model.off("change:grid", drawGrid);
  };
}

export default { render };
