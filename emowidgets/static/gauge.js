// EmotionGauge: one bar per class label, plus dominant class, processed fps and face count; a status line
// (starting, stopped) and a warning when there is one; whose bars they are when there are several faces; below,
// what the pipeline gave up to keep up (quality level, frame size; explained in its tooltip) and, when the shown
// scores are old, their age.

const STALE_MS = 500; // scores older than this say so

// One model.on per event name: anywidget's model API takes one name a call (Backbone, under Jupyter, also splits
// "change:a change:b"; marimo's model does not, so such a listener never fires there). Returns the unsubscriber.
function listen(model, names, fn) {
  const list = names.split(" ").filter(Boolean);
  list.forEach((name) => model.on(name, fn));
  return () => list.forEach((name) => model.off(name, fn));
}

function render({ model, el }) {
  el.classList.add("emow-gauge");
  const header = document.createElement("div");
  header.className = "emow-gauge-header";
  const dominant = document.createElement("span");
  dominant.className = "emow-gauge-dominant";
  const fps = document.createElement("span");
  fps.className = "emow-gauge-fps";
  const faces = document.createElement("span");
  faces.className = "emow-gauge-faces";
  header.append(dominant, faces, fps);
  const status = document.createElement("div");
  status.className = "emow-gauge-status";
  const notice = document.createElement("div");
  notice.className = "emow-gauge-notice";
  const shown = document.createElement("div");
  shown.className = "emow-gauge-shown";
  const rows = document.createElement("div");
  rows.className = "emow-gauge-rows";
  const stale = document.createElement("div");
  stale.className = "emow-gauge-stale";
  const level = document.createElement("div");
  level.className = "emow-gauge-level";
  el.append(header, status, notice, shown, rows, stale, level);

  function buildRows() {
    rows.replaceChildren(...model.get("labels").map((label) => {
      const row = document.createElement("div");
      row.className = "emow-gauge-row";
      row.dataset.label = label;
      row.innerHTML = '<span class="emow-gauge-name"></span><span class="emow-gauge-bar"><span class="emow-gauge-fill"></span></span><span class="emow-gauge-value"></span>';
      row.firstChild.textContent = label;
      return row;
    }));
    update();
  }

  function update() {
    const values = model.get("values");
    const top = model.get("dominant");
    [...rows.children].forEach((row, i) => {
      const v = Math.max(0, Math.min(1, values[i] || 0));
      row.querySelector(".emow-gauge-fill").style.width = `${v * 100}%`;
      row.querySelector(".emow-gauge-value").textContent = v.toFixed(2);
      row.classList.toggle("emow-gauge-top", row.dataset.label === top);
    });
    dominant.textContent = top || "no face";
    faces.textContent = `${model.get("faces")} face${model.get("faces") === 1 ? "" : "s"}`;
    fps.textContent = `${model.get("fps").toFixed(1)} fps`;
    fps.dataset.value = model.get("fps");
    const age = model.get("age");
    stale.hidden = !(age > STALE_MS && model.get("faces") > 0);
    stale.dataset.age = age;
    stale.textContent = stale.hidden ? "" : `updated ${(age / 1000).toFixed(1)} s ago`;
    level.textContent = model.get("level");
    level.title = model.get("level_help");
    level.hidden = !model.get("level");
    const state = model.get("status");
    status.textContent = state;
    status.hidden = !state;
    el.classList.toggle("emow-gauge-stopped", state === "stopped");
    el.classList.toggle("emow-gauge-starting", state.startsWith("starting"));
    if (state === "stopped") dominant.textContent = "stopped";
    notice.textContent = model.get("notice");
    notice.hidden = !model.get("notice");
    shown.textContent = model.get("shown");
    shown.hidden = !model.get("shown");
  }

  // A box clicked on the preview of the same link: the kernel follows that face (or, clicked again, stops).
  const onSelect = (e) => {
    const d = e.detail || {};
    if (d.link && d.link === model.get("link")) model.send({ type: "select", id: d.id });
  };
  document.addEventListener("emow-select", onSelect);

  const events = "change:values change:dominant change:fps change:faces change:level change:age change:status " +
    "change:notice change:shown";
  model.on("change:labels", buildRows);
  const unlisten = listen(model, events, update);
  buildRows();
  return () => {
    document.removeEventListener("emow-select", onSelect);
    model.off("change:labels", buildRows);
    unlisten();
  };
}

export default { render };
