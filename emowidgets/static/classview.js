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

function duration(seconds) {  // 75 -> "1 min 15 s", 40 -> "40 s"
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m ? `${m} min ${s} s` : `${s} s`;
}

function nameOf(model, id) {
  return model.get("names")[String(id)] || `#${id}`;
}

function colorOf(palette, id) { // a face's colour: the same on its tile and on its box in the preview
  return palette[((id % palette.length) + palette.length) % palette.length];
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

// One model.on per event name: anywidget's model API takes one name a call (Backbone, under Jupyter, also splits
// "change:a change:b"; marimo's model does not, so such a listener never fires there). Returns the unsubscriber.
function listen(model, names, fn) {
  const list = names.split(" ").filter(Boolean);
  list.forEach((name) => model.on(name, fn));
  return () => list.forEach((name) => model.off(name, fn));
}

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
      <span class="emow-cv-notice"></span><span class="emow-cv-others"></span></div>
    <div class="emow-cv-body">
      <div class="emow-cv-faces"><div class="emow-cv-empty" hidden>no faces found — is the call's gallery shared?</div>
        <div class="emow-cv-tiles"></div></div>
      <div class="emow-cv-panel">
        <div class="emow-cv-chartbox"></div><div class="emow-cv-legend"></div>
        <div class="emow-cv-presence"></div>
        <h4>Needs attention</h4><p class="emow-cv-rule"></p><ul class="emow-cv-attention"></ul>
        <details class="emow-cv-left"><summary>left: <span class="emow-cv-left-count">0</span></summary>
          <ul class="emow-cv-left-list"></ul></details>
        <details class="emow-cv-settings"><summary>thresholds</summary>
          <label title="how far the mean of angry, disgust, fear and sad must rise above the student's own resting face">negative rise ≥ <input type="number" step="0.05" min="0" max="1" data-trait="negative_threshold"></label>
          <label>over (s) <input type="number" step="1" min="1" data-trait="negative_seconds"></label>
          <label title="seconds in view a student's resting face is learned from">resting face (s) <input type="number" step="5" min="1" data-trait="resting_seconds"></label>
          <label>absent &gt; (s) <input type="number" step="1" min="1" data-trait="absent_seconds"></label>
          <label>chart (min) <input type="number" step="1" min="1" data-trait="window_minutes"></label>
          <label>retire absent after (s) <input type="number" step="10" min="1" data-trait="retention_seconds"></label>
        </details>
      </div>
    </div>`;
  const $ = (sel) => el.querySelector(sel);
  const tiles = $(".emow-cv-tiles");
  const link = () => model.get("link");
  // The tiles, keyed by track id (camera-off call tiles by "off:<tile>"): each is built once and then only its
  // text, colours and sparkline change, so a click on a name or a button lands however often the faces update.
  const shown = new Map(); // key -> { tile, nameEl, badge, button, emotion, spark, sparkKey }
  let editing = null; // id whose name input is open: that name is left alone while the others update
  let hovered = null; // the id hovered here or on the preview's boxes

  function rename(id) {
    const entry = shown.get(id);
    if (!entry || editing === id) return;
    if (editing !== null) shown.get(editing)?.nameEl.querySelector("input")?.blur();
    editing = id;
    const input = document.createElement("input");
    input.className = "emow-cv-name-input";
    input.value = model.get("names")[String(id)] || "";
    input.placeholder = `#${id}`;
    entry.nameEl.replaceChildren(input);
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
      entry.nameEl.replaceChildren();
      drawTiles();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") done(true);
      if (e.key === "Escape") done(false);
      e.stopPropagation(); // keep JupyterLab shortcuts out of the text box
    });
    input.addEventListener("blur", () => done(true));
    input.addEventListener("click", (e) => e.stopPropagation());
  }

  function hover(id, on, from) { // highlight tile `id` (null: none); tell the preview unless it told us
    hovered = on ? id : (hovered === id ? null : hovered);
    for (const [key, entry] of shown) entry.tile.classList.toggle("emow-cv-tile-hover", key === hovered);
    if (from === "tiles") {
      document.dispatchEvent(new CustomEvent("emow-hover", { detail: { link: link(), id, on, from } }));
    }
  }
  const onHover = (e) => {
    const d = e.detail || {};
    if (d.from !== "tiles" && d.link && d.link === link()) hover(d.id, d.on, d.from);
  };
  document.addEventListener("emow-hover", onHover);

  function makeTile(id) {
    const tile = document.createElement("div");
    tile.className = "emow-cv-tile";
    tile.dataset.id = id;
    tile.innerHTML = `<div class="emow-cv-top"><div class="emow-cv-name" title="click to name"></div>
      <button class="emow-cv-calibrate">calibrate</button></div><div class="emow-cv-emotion"></div>`;
    const entry = { tile, nameEl: tile.querySelector(".emow-cv-name"), badge: null,
      button: tile.querySelector(".emow-cv-calibrate"), emotion: tile.querySelector(".emow-cv-emotion"),
      spark: null, sparkKey: "" };
    entry.button.addEventListener("click", () => model.send({ type: "calibrate", id }));
    entry.nameEl.addEventListener("click", () => rename(id));
    tile.addEventListener("mouseenter", () => hover(id, true, "tiles"));
    tile.addEventListener("mouseleave", () => hover(id, false, "tiles"));
    return entry;
  }

  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
  function setAttr(node, name, value) { if (node.getAttribute(name) !== value) node.setAttribute(name, value); }

  function updateTile(entry, f) {
    const labels = model.get("labels"), colors = model.get("colors"), palette = model.get("track_colors");
    const [top, score] = f.top;
    const k = labels.indexOf(top); // -1 for an adapter's own label: drawn grey
    const scored = labelsOf(model, f.id);
    const named = Boolean(model.get("names")[String(f.id)]);
    const { tile, nameEl, button, emotion } = entry;
    const off = Boolean(f.camera_off);
    tile.classList.toggle("emow-cv-absent", !f.present && !off);
    tile.classList.toggle("emow-cv-off", off);
    Object.assign(tile.dataset, { dominant: top, labels: scored.labels.join(","), adapter: scored.adapter,
      state: f.present ? "present" : (off ? "camera off" : "absent") });
    tile.style.borderColor = f.present ? (colors[k] || "#666") : "#ccc";
    const color = colorOf(palette, f.id);
    if (nameEl.style.borderLeftColor !== color) nameEl.style.borderLeftColor = color;
    tile.dataset.color = color;
    if (editing !== f.id) setText(nameEl, nameOf(model, f.id));
    if (scored.adapter === "own" && !entry.badge) {
      entry.badge = document.createElement("span");
      entry.badge.className = "emow-cv-badge";
      entry.badge.textContent = "own";
      tile.querySelector(".emow-cv-top").insertBefore(entry.badge, button);
    } else if (scored.adapter !== "own" && entry.badge) {
      entry.badge.remove();
      entry.badge = null;
    }
    if (entry.badge) setAttr(entry.badge, "title", `own adapter: ${scored.labels.join(", ")}`);
    if (button.disabled === named) button.disabled = !named;
    setAttr(button, "title", named ? `calibrate ${nameOf(model, f.id)}: capture shots, train, apply`
      : "name this tile first (click its #id): adapters are kept by name");
    const text = f.present ? `${top} ${Math.round(100 * score)}%` + (f.learning < 1 ? " · learning their resting face" : "")
      : (off ? "camera off" : `absent ${Math.round(f.absent_s)} s`);
    const stale = f.present && f.age_ms > STALE_MS; // scores kept from an earlier frame (the classification budget)
    const ageText = stale ? `${(f.age_ms / 1000).toFixed(1)} s ago` : "";
    if (emotion.firstChild?.nodeType !== Node.TEXT_NODE) emotion.prepend(document.createTextNode(""));
    if (emotion.firstChild.data !== text) emotion.firstChild.data = text;
    let age = emotion.querySelector(".emow-cv-age");
    if (stale && !age) {
      age = document.createElement("span");
      age.className = "emow-cv-age";
      emotion.append(age);
    } else if (!stale && age) age.remove();
    if (stale) { age.dataset.age = f.age_ms; setText(age, ageText); }
    const sparkKey = JSON.stringify(f.spark);
    if (sparkKey !== entry.sparkKey) { // only a changed line is redrawn
      entry.sparkKey = sparkKey;
      const line = sparkline(f.spark);
      if (entry.spark) entry.spark.replaceWith(line); else tile.append(line);
      entry.spark = line;
    }
  }

  function makeOffTile(k) { // a call tile with no face that no student's tile last sat in
    const tile = document.createElement("div");
    tile.className = "emow-cv-tile emow-cv-off";
    tile.dataset.tile = k;
    tile.dataset.state = "camera off";
    tile.innerHTML = '<div class="emow-cv-top"><div class="emow-cv-name"></div></div><div class="emow-cv-emotion">camera off</div>';
    tile.querySelector(".emow-cv-name").textContent = `call tile ${k + 1}`;
    return { tile };
  }

  function drawTiles() {
    const items = [...model.get("faces").map((f) => [f.id, f]), ...model.get("camera_off").map((o) => [`off:${o.tile}`, o])];
    const keep = new Set(items.map(([key]) => key));
    for (const [key, entry] of shown) {
      if (!keep.has(key)) {
        if (editing === key) editing = null;
        entry.tile.remove();
        shown.delete(key);
      }
    }
    items.forEach(([key, item], i) => {
      let entry = shown.get(key);
      if (!entry) {
        entry = typeof key === "string" ? makeOffTile(item.tile) : makeTile(key);
        shown.set(key, entry);
      }
      if (typeof key !== "string") updateTile(entry, item);
      if (tiles.children[i] !== entry.tile) tiles.insertBefore(entry.tile, tiles.children[i] || null);
    });
    const empty = $(".emow-cv-empty");
    empty.hidden = !model.get("no_faces");
  }

  function drawPanel() {
    const labels = model.get("labels"), colors = model.get("colors"), history = model.get("history");
    $(".emow-cv-chartbox").replaceChildren(chart(history, colors, labels));
    $(".emow-cv-legend").innerHTML = labels.map((l, k) => `<span><i style="background:${colors[k]}"></i>${l}</span>`).join("");
    const faces = model.get("faces");
    const present = faces.filter((f) => f.present).length;
    const off = faces.filter((f) => f.camera_off).length + model.get("camera_off").length;
    const presence = $(".emow-cv-presence");
    presence.textContent = `${present} present, ${faces.length - present - faces.filter((f) => f.camera_off).length} absent`
      + (off ? `, ${off} camera off` : "");
    presence.dataset.present = present;
    setText($(".emow-cv-rule"), model.get("attention_rule").replace(/^needs attention: /, "when a student "));
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
      li.textContent = `${f.name || `#${f.id}`}: ${duration(f.present_s)} in view, left at ${f.left_at}`;
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
    $(".emow-cv-others").textContent = model.get("others");
    $(".emow-cv-fps").textContent = `${model.get("fps").toFixed(1)} fps`;
    $(".emow-cv-level").textContent = model.get("level");
    $(".emow-cv-level").hidden = !model.get("level");
    $(".emow-cv-level").title = model.get("level_help");
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
  const headEvents = "change:status change:notice change:others change:fps change:level change:logging change:log_path change:negative_threshold " +
    "change:negative_seconds change:resting_seconds change:absent_seconds change:window_minutes change:retention_seconds";
  const faceEvents = "change:faces change:names change:adapted change:room_labels change:camera_off change:no_faces";
  const unlisten = [listen(model, faceEvents, onFaces),
    listen(model, "change:history change:attention change:attention_rule", drawPanel), listen(model, headEvents, drawHead)];
  model.on("change:left", drawLeft);
  model.on("change:grid", drawGrid);
  drawHead(); drawGrid(); drawTiles(); drawPanel(); drawLeft();
  return () => {
    unlisten.forEach((off) => off());
    model.off("change:left", drawLeft);
    model.off("change:grid", drawGrid);
    document.removeEventListener("emow-hover", onHover);
  };
}

export default { render };
