// CameraWidget: preview a MediaStream, send JPEG frames to the kernel, draw the results it sends back.
// At most `max_in_flight` frames are un-acked; camera frames arriving meanwhile are skipped (never queued).
// Source "frames" opens no stream: the kernel sends its frames (a recording), scaled down, as "preview" messages.
// In a class view (`label_ids`) each box carries its face's name (or #id) in that face's colour, and hovering a box
// highlights the class view's tile of that face (document events "emow-hover" between widgets of one `link`).

// Frames are sized to need: each result's `scale` says how much smaller the next frames could be and keep every
// face sharp; the widget sends the smallest step that does (bigger at once, smaller after SHRINK_HOLD_MS).
// JPEG encoding runs in a Worker (OffscreenCanvas) so the preview never waits for it; canvas.toBlob where the
// page has no Worker, OffscreenCanvas or createImageBitmap.

const DEFAULT_SIZE = { camera: [640, 480], screen: [1280, 720] };
const ACK_TIMEOUT_MS = 5000; // a frame never acked (kernel restarted) stops counting as in flight
const MAX_SAMPLES = 10000;
const MAX_UNANSWERED = 64; // frames remembered while waiting for their result (with on_frame, none comes)
const MAX_FACE_IDS = 500; // stats.fresh counts results per face id for at most this many ids
export const SCALE_STEPS = [1, 0.75, 0.5, 0.375, 0.25, 0.1875, 0.125, 0.0625]; // frame scales sent, largest first
export const SHRINK_HOLD_MS = 1000; // a smaller frame scale must be asked for this long before frames shrink
export const SHRINK_MARGIN = 1.1; // and leave the faces 10 % to spare, so a face near a step does not flip between two

// The frame scale a result asks for: the scale its frame was sent at times the result's `scale`, clamped to
// [min, 1] and rounded UP to a step (a face is never sent smaller than the kernel asked for).
export function targetScale(sentScale, asked, min) {
  const t = Math.min(1, Math.max(min, sentScale * asked));
  let best = 1;
  for (const step of SCALE_STEPS) if (step >= t - 1e-6) best = step;
  return best;
}

// The sizing decision for one result, pure (no DOM, no clock: `now` is given) so node --test can check it.
// state: { frameScale, shrink } with shrink null or { since, to } (results have asked for the smaller scale `to`
// since `since`); sent: the scale the result's frame went at (undefined: not known); asked: the result's `scale`;
// min: min_frame_scale; resize: the trait. Returns the next state: bigger at once, smaller (with SHRINK_MARGIN
// to spare) once results have asked for it for SHRINK_HOLD_MS, then to the largest scale asked for meanwhile.
export function nextFrameScale(state, { sent, asked, min, resize, now }) {
  if (!resize) return { frameScale: 1, shrink: null };
  if (typeof sent !== "number" || !(sent > 0) || typeof asked !== "number" || !(asked > 0)) return state;
  const up = targetScale(sent, asked, min);
  if (up > state.frameScale) return { frameScale: up, shrink: null };
  const target = targetScale(sent, asked * SHRINK_MARGIN, min);
  if (target >= state.frameScale) return { frameScale: state.frameScale, shrink: null };
  const shrink = state.shrink ? { since: state.shrink.since, to: Math.max(state.shrink.to, target) }
    : { since: now, to: target };
  if (now - shrink.since >= SHRINK_HOLD_MS) return { frameScale: shrink.to, shrink: null };
  return { frameScale: state.frameScale, shrink };
}

// The encoder worker: draws each transferred ImageBitmap on an OffscreenCanvas and answers with its JPEG
// (an ArrayBuffer, transferred back, or base64 text for text transport).
const WORKER_SOURCE = `
let canvas = null, ctx = null;
onmessage = async ({ data: { id, bitmap, quality, text } }) => {
  try {
    if (!canvas) { canvas = new OffscreenCanvas(bitmap.width, bitmap.height); ctx = canvas.getContext("2d"); }
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width; canvas.height = bitmap.height;
    }
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality });
    if (text) {
      const url = new FileReaderSync().readAsDataURL(blob);
      postMessage({ id, data: url.slice(url.indexOf(",") + 1) });
    } else {
      const buf = await blob.arrayBuffer();
      postMessage({ id, data: buf }, [buf]);
    }
  } catch (err) {
    postMessage({ id, error: String((err && err.message) || err) });
  }
};`;

// A JPEG encoder in a Worker made from WORKER_SOURCE; null where the page cannot run one.
function workerEncoder() {
  if (typeof Worker === "undefined" || typeof OffscreenCanvas === "undefined" || typeof createImageBitmap === "undefined") {
    return null;
  }
  let url = null, worker;
  try {
    url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    worker = new Worker(url);
  } catch (err) {
    if (url) URL.revokeObjectURL(url);
    return null;
  }
  const jobs = new Map(); // id -> { resolve, reject }
  let next = 0;
  let failed = null;
  const failAll = (err) => {
    for (const job of jobs.values()) job.reject(err);
    jobs.clear();
  };
  worker.onmessage = ({ data }) => {
    const job = jobs.get(data.id);
    if (!job) return;
    jobs.delete(data.id);
    if (data.error) job.reject(new Error(data.error));
    else job.resolve(data.data);
  };
  worker.onerror = (event) => { // e.g. a page policy that forbids blob: workers
    failed = new Error(`encoder worker failed: ${event.message || "no detail"}`);
    failAll(failed);
  };
  return {
    encode(bitmap, quality, text) {
      if (failed) { bitmap.close(); return Promise.reject(failed); }
      return new Promise((resolve, reject) => {
        const id = ++next;
        jobs.set(id, { resolve, reject });
        worker.postMessage({ id, bitmap, quality, text }, [bitmap]);
      });
    },
    close() {
      worker.terminate();
      URL.revokeObjectURL(url);
      failAll(new Error("encoder closed"));
    },
  };
}

const KERNEL_HINT = 'or, if the kernel runs on this computer, read its camera there: emowidgets.live("kernel")';
const PERMISSION_HINT = "allow the camera for this site (camera icon in the address bar) and re-run the cell";

// Why this page can have no camera at all, as one line saying what to do; "" when it can ask for one.
function cameraUnavailable(devices) {
  const elsewhere = `open the notebook in JupyterLab or Notebook 7 in a browser, ${KERNEL_HINT}`;
  if (location.protocol === "vscode-webview:") return `VS Code's notebooks give widgets no camera: ${elsewhere}`;
  if (!window.isSecureContext) {
    return `${location.origin} is not a secure origin, so the browser offers no camera: open Jupyter at https:// or http://localhost, ${KERNEL_HINT}`;
  }
  if (!devices || !devices.getUserMedia) return `this page offers no camera API: ${elsewhere}`;
  return "";
}

// A blob's bytes as base64, for frontends that lose binary buffers (the kernel switches `transport` to "text").
function base64Of(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).slice(String(reader.result).indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function statusOf(err, source) {
  const name = err && err.name;
  if (name === "CameraUnavailable") return "camera unavailable";
  if (source === "screen" && (name === "NotAllowedError" || name === "AbortError")) return "share cancelled";
  if (name === "NotAllowedError" || name === "SecurityError") return "permission denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "no camera";
  return "error";
}

async function openStream(model) {
  const source = model.get("source");
  if (source === "stream") {
    const ref = model.get("stream");
    if (!ref) throw Object.assign(new Error("no stream widget given"), { name: "NotFoundError" });
    const streamModel = await model.widget_manager.get_model(ref.slice("IPY_MODEL_".length));
    return { stream: await streamModel.captureStream(), owned: false };
  }
  const [dw, dh] = DEFAULT_SIZE[source] || DEFAULT_SIZE.camera;
  const video = { width: { ideal: model.get("width") || dw }, height: { ideal: model.get("height") || dh } };
  const devices = navigator.mediaDevices;
  const why = cameraUnavailable(devices);
  if (why) throw Object.assign(new Error(why), { name: "CameraUnavailable" });
  if (source === "screen") {
    if (!devices || !devices.getDisplayMedia) throw Object.assign(new Error("no screen capture"), { name: "NotFoundError" });
    return { stream: await devices.getDisplayMedia({ video, audio: false }), owned: true };
  }
  return { stream: await devices.getUserMedia({ video, audio: false }), owned: true };
}

// The corner label of a result's call layout: "grid 7×7 (auto)", "grid set 7×7", "no grid"; null: no layout sent.
function gridText(grid) {
  if (!grid) return null;
  if (!grid.tiles || !grid.tiles.length || !grid.label) return "no grid";
  return grid.source === "set" ? `grid set ${grid.label}` : `grid ${grid.label} (auto)`;
}

// Position an outline over the preview from a [x, y, w, h] box in 0-1 units of the frame.
function place(node, [x, y, w, h], mirror) {
  node.style.left = `${(mirror ? 1 - x - w : x) * 100}%`;
  node.style.top = `${y * 100}%`;
  node.style.width = `${w * 100}%`;
  node.style.height = `${h * 100}%`;
}

function colorOf(palette, id) { // a face's colour: the same on its box and on its tile in the class view
  return palette[((id % palette.length) + palette.length) % palette.length];
}

// One model.on per event name: anywidget's model API takes one name a call (Backbone, under Jupyter, also splits
// "change:a change:b"; marimo's model does not, so such a listener never fires there). Returns the unsubscriber.
function listen(model, names, fn) {
  const list = names.split(" ").filter(Boolean);
  list.forEach((name) => model.on(name, fn));
  return () => list.forEach((name) => model.off(name, fn));
}

function render({ model, el }) {
  el.classList.add("emow-camera");
  const stage = document.createElement("div");
  stage.className = "emow-stage";
  const video = document.createElement("video");
  video.className = "emow-video";
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  const overlay = document.createElement("div");
  overlay.className = "emow-overlay";
  const tileLayer = document.createElement("div"); // call-tile outlines, under the face boxes
  tileLayer.className = "emow-tiles";
  const gridLabel = document.createElement("div");
  gridLabel.className = "emow-grid-label";
  gridLabel.hidden = true;
  overlay.append(tileLayer, gridLabel);
  const picture = document.createElement("img"); // source "frames": the kernel's preview frames
  picture.className = "emow-frame";
  picture.alt = "";
  const frames = model.get("source") === "frames";
  video.hidden = frames;
  picture.hidden = !frames;
  stage.append(video, picture, overlay);
  const statusEl = document.createElement("div");
  statusEl.className = "emow-status";
  el.append(stage, statusEl);

  let canvas = null, ctx = null; // the fallback encoder's canvas
  let encoder; // the worker encoder; null: encode with canvas.toBlob (undefined: not tried yet)
  // Measurements for tests and benchmarks (performance.now() milliseconds), read via el.emowStats.
  // ids: each sampled result's face ids; fresh: face id -> results in which that face was classified on that
  // frame (age 0); sizes: "WxH" -> frames sent at that size; encoder: "worker" or "canvas".
  const stats = { cameraFrames: 0, sent: 0, sentAsText: 0, acked: 0, results: 0, latencies: [], faces: [], ids: [],
    kernelMs: [], encodeMs: [], ackMs: [], encoder: "", cameraFps: 0, frameScale: 1, frameSize: [0, 0], sizes: {},
    level: "", fresh: {} };
  el.emowStats = stats;

  let alive = true;
  let current = null; // { stream, owned }
  let seq = 0;
  let fresh = false; // a camera frame arrived that was not sent yet
  let lastFrameAt = 0;
  let lastDrawnSeq = 0;
  const pending = new Map(); // seq -> send time, until acked
  const captured = new Map(); // seq -> capture time, until its result is drawn
  const sentScales = new Map(); // seq -> frame scale it was sent at, until its result arrives
  const boxes = new Map(); // face id -> its box, kept while that face is in the results
  let hovered = null; // the face id hovered here or on the class view's tiles
  let pictureUrl = null;
  let drawnGrid = ""; // the tiles (and mirroring) the outlines show, as JSON: the DOM changes only when they do
  let frameScale = 1; // of the video's own size; what the next frame is sent at (1 while `resize` is off)
  let shrink = null; // { since, to }: results have asked for a smaller scale since `since`
  let cameraFps = 0;
  let frameCallback = null; // the pending requestVideoFrameCallback handle, cancelled by stop()
  let starts = 0; // start() calls so far: a stream that opens after a newer start() (or close) is stopped at once

  function setStatus(status, error = "") {
    statusEl.textContent = error ? `${status}: ${error}` : status;
    statusEl.dataset.status = status;
    if (model.get("status") !== status || model.get("error") !== error) {
      model.set({ status, error });
      model.save_changes();
    }
  }

  // One frame's JPEG (an ArrayBuffer, or base64 text) at w x h: in the worker, else with canvas.toBlob.
  async function encode(w, h, quality, text) {
    if (encoder === undefined) encoder = workerEncoder();
    if (encoder) {
      const native = w === video.videoWidth && h === video.videoHeight;
      try {
        const bitmap = await createImageBitmap(video, native ? {} : { resizeWidth: w, resizeHeight: h, resizeQuality: "medium" });
        if (!alive) { bitmap.close(); throw new Error("widget closed"); }
        stats.encoder = "worker";
        return await encoder.encode(bitmap, quality, text);
      } catch (err) {
        if (!alive || !encoder) throw err;
        console.warn("emowidgets: JPEG worker failed, encoding on the page from now on:", err);
        encoder.close();
        encoder = null;
      }
    }
    stats.encoder = "canvas";
    if (!canvas) { canvas = document.createElement("canvas"); ctx = canvas.getContext("2d"); }
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.drawImage(video, 0, 0, w, h);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
    if (!blob) throw new Error("canvas.toBlob gave no JPEG");
    return text ? base64Of(blob) : blob.arrayBuffer();
  }

  function pump() {
    if (!alive || !current || !fresh || pending.size >= model.get("max_in_flight")) return;
    const vw = video.videoWidth, vh = video.videoHeight;
    if (video.readyState < 2 || !vw || !vh) return;
    fresh = false;
    const scale = model.get("resize") ? frameScale : 1;
    const w = Math.max(1, Math.round(vw * scale)), h = Math.max(1, Math.round(vh * scale));
    const t = performance.now();
    const s = ++seq;
    const source = current; // encoding is async: a frame whose stream has since stopped is not sent
    const text = model.get("transport") === "text"; // set by the kernel when buffers are lost on the way
    pending.set(s, t);
    captured.set(s, t);
    sentScales.set(s, scale);
    encode(w, h, model.get("quality"), text).then((data) => {
      if (!alive || current !== source) { pending.delete(s); return; }
      const header = { type: "frame", seq: s, timestamp_ms: Math.round(performance.timeOrigin + t), width: w, height: h,
        scale, camera_fps: cameraFps };
      const sentAt = performance.now();
      if (text) {
        model.send({ ...header, jpeg: data });
        stats.sentAsText++;
      } else model.send(header, undefined, [data]);
      pending.set(s, sentAt);
      stats.sent++;
      stats.frameScale = scale;
      stats.frameSize = [w, h];
      stats.sizes[`${w}x${h}`] = (stats.sizes[`${w}x${h}`] || 0) + 1; // a few steps per camera size
      if (stats.encodeMs.length < MAX_SAMPLES) stats.encodeMs.push(sentAt - t);
    }, (err) => {
      pending.delete(s);
      sentScales.delete(s);
      if (alive) console.warn("emowidgets: a frame could not be encoded:", err);
    });
  }

  // Take a result's `scale` (how much smaller or larger the next frames could be than its frame): see
  // nextFrameScale. Forgets the sent scales of its frame and older ones.
  function resizeFrom(msg) {
    const sent = sentScales.get(msg.seq);
    for (const s of sentScales.keys()) if (s <= msg.seq) sentScales.delete(s);
    ({ frameScale, shrink } = nextFrameScale({ frameScale, shrink }, { sent, asked: msg.scale,
      min: model.get("min_frame_scale"), resize: model.get("resize"), now: performance.now() }));
  }

  function onFrame() {
    if (!alive) return;
    stats.cameraFrames++;
    lastFrameAt = performance.now();
    fresh = true;
    pump();
    watchFrames();
  }

  function watchFrames() { // the next frame the preview shows calls onFrame (where the browser can say)
    frameCallback = video.requestVideoFrameCallback ? video.requestVideoFrameCallback(onFrame) : null;
  }

  function hover(id, on, from) { // highlight box `id`; tell the class view unless it told us
    hovered = on ? id : (hovered === id ? null : hovered);
    for (const [key, box] of boxes) box.classList.toggle("emow-box-hover", key === hovered);
    if (from === "boxes") {
      document.dispatchEvent(new CustomEvent("emow-hover", { detail: { link: model.get("link"), id, on, from } }));
    }
  }
  const onHover = (e) => {
    const d = e.detail || {};
    if (d.from !== "boxes" && d.link && d.link === model.get("link")) hover(d.id, d.on, d.from);
  };
  document.addEventListener("emow-hover", onHover);

  function drawFaces(faces) {
    const mirror = model.get("mirror") && model.get("source") === "camera";
    const ids = model.get("label_ids"), names = model.get("names"), palette = model.get("track_colors");
    const keep = new Set(faces.map((f) => f.id));
    for (const [id, box] of boxes) if (!keep.has(id)) { box.remove(); boxes.delete(id); }
    for (const face of faces) {
      let box = boxes.get(face.id);
      if (!box) {
        box = document.createElement("div");
        box.className = "emow-box";
        box.dataset.id = face.id;
        const label = document.createElement("span");
        label.className = "emow-label";
        label.append(document.createElement("b"), document.createTextNode(""));
        label.firstChild.className = "emow-who";
        box.append(label);
        box.addEventListener("mouseenter", () => hover(face.id, true, "boxes"));
        box.addEventListener("mouseleave", () => hover(face.id, false, "boxes"));
        box.addEventListener("click", () => document.dispatchEvent(  // the gauge of the same link follows it
          new CustomEvent("emow-select", { detail: { link: model.get("link"), id: face.id } })));
        overlay.append(box);
        boxes.set(face.id, box);
      }
      place(box, face.box, mirror);
      box.classList.toggle("emow-inside", face.box[1] < 0.06);
      box.classList.toggle("emow-ided", ids);
      box.classList.toggle("emow-box-hover", face.id === hovered);
      box.dataset.label = face.label;
      box.dataset.tile = face.tile ?? -1;
      const [who, what] = box.firstChild.childNodes;
      const name = ids ? (names[String(face.id)] || `#${face.id}`) : "";
      if (who.textContent !== name) who.textContent = name;
      who.hidden = !ids;
      what.data = `${face.label} ${face.score.toFixed(2)}`;
      const color = ids ? colorOf(palette, face.id) : "";
      if (box.style.getPropertyValue("--emow-face") !== color) box.style.setProperty("--emow-face", color);
    }
  }

  function showPicture(buffer) { // a kernel frame (JPEG): shown, the previous one's URL released once replaced
    const url = URL.createObjectURL(new Blob([buffer], { type: "image/jpeg" }));
    const old = pictureUrl;
    pictureUrl = url;
    picture.src = url;
    if (old) URL.revokeObjectURL(old);
    stats.previews = (stats.previews || 0) + 1;
  }

  // The call's tile grid (a result's `grid`, null: none sent): one outline per tile, reused from the last
  // result, and the corner label; nothing is touched while the tiles stay the same. A tile without a face
  // (camera off, or nobody there) is marked as such.
  function drawGrid(grid, faces = []) {
    const text = gridText(grid);
    if (gridLabel.textContent !== (text || "")) gridLabel.textContent = text || "";
    gridLabel.hidden = text === null;
    if (grid) gridLabel.dataset.source = grid.source || "";
    const tiles = (grid && grid.tiles) || [];
    const mirror = model.get("mirror") && model.get("source") === "camera";
    const key = tiles.length ? JSON.stringify([mirror, tiles]) : "";
    if (key !== drawnGrid) {
      drawnGrid = key;
      while (tileLayer.children.length > tiles.length) tileLayer.lastChild.remove();
      while (tileLayer.children.length < tiles.length) {
        const tile = document.createElement("div");
        tile.className = "emow-tile";
        tileLayer.append(tile);
      }
      tiles.forEach((box, k) => place(tileLayer.children[k], box, mirror));
    }
    const held = new Set(faces.map((f) => f.tile));
    [...tileLayer.children].forEach((el, k) => {
      const empty = !held.has(k);
      if (el.classList.contains("emow-tile-empty") !== empty) el.classList.toggle("emow-tile-empty", empty);
    });
  }

  function ack(seq) {
    const sentAt = pending.get(seq);
    if (sentAt !== undefined && pending.delete(seq)) {
      stats.acked++;
      if (stats.ackMs.length < MAX_SAMPLES) stats.ackMs.push(performance.now() - sentAt);
    }
  }

  function onMessage(msg, buffers) {
    if (!msg || !alive) return;
    if (msg.type === "preview" && frames && buffers && buffers.length) {
      showPicture(buffers[0]);
      return;
    }
    if (msg.type === "ack") {
      ack(msg.seq);
      pump();
    } else if (msg.type === "result") {
      for (const s of [...pending.keys()]) if (s <= msg.seq) ack(s); // a result acks its frame and older ones
      if (current && msg.seq > lastDrawnSeq) resizeFrom(msg); // before pump: the next frame goes at the new size
      pump();
    }
    // A result can arrive after the stream stopped (its frame was in flight): don't draw it on a dead stream.
    if (msg.type === "result" && (current || frames) && msg.seq > lastDrawnSeq) {
      lastDrawnSeq = msg.seq;
      drawFaces(msg.faces);
      drawGrid(msg.grid || null, msg.faces);
      stats.level = msg.level || "";
      for (const face of msg.faces) {
        if (face.age === 0 && (face.id in stats.fresh || Object.keys(stats.fresh).length < MAX_FACE_IDS)) {
          stats.fresh[face.id] = (stats.fresh[face.id] || 0) + 1;
        }
      }
      const now = performance.now();
      const t = captured.get(msg.seq);
      for (const s of captured.keys()) if (s <= msg.seq) captured.delete(s);
      stats.results++;
      if (t !== undefined && stats.latencies.length < MAX_SAMPLES) {
        stats.latencies.push(now - t);
        stats.faces.push(msg.faces.length);
        stats.ids.push(msg.faces.map((f) => f.id));
        stats.kernelMs.push(msg.ms);
      }
    }
  }

  let lastCount = 0;
  let lastCameraCount = 0;
  let lastTrack = null, lastTrackFrames = 0;
  let lastTick = performance.now();

  // Frames the camera delivered over the last `seconds`: the track's own count where the browser keeps one
  // (MediaStreamTrack.stats), else the frames the preview showed (requestVideoFrameCallback).
  function measureCameraFps(seconds) {
    const track = current && current.track;
    const delivered = track && track.stats && track.stats.totalFrames;
    let fps;
    if (typeof delivered === "number") {
      fps = track === lastTrack ? (delivered - lastTrackFrames) / seconds : 0;
      lastTrack = track;
      lastTrackFrames = delivered;
    } else fps = (stats.cameraFrames - lastCameraCount) / seconds;
    lastCameraCount = stats.cameraFrames;
    return Math.round(fps * 10) / 10;
  }
  const ticker = setInterval(() => {
    const now = performance.now();
    for (const [s, t] of pending) if (now - t > ACK_TIMEOUT_MS) pending.delete(s);
    for (const map of [captured, sentScales]) { // frames acked without a result (a plain on_frame callback)
      for (const s of map.keys()) { if (s >= seq - MAX_UNANSWERED) break; map.delete(s); }
    }
    if (current && current.track && current.track.readyState === "ended") streamEnded();
    if (current && now - lastFrameAt > 250) { fresh = true; pump(); } // rVFC stalls while hidden
    if (now - lastTick >= 1000) {
      const fps = Math.round(((stats.sent - lastCount) * 10000) / (now - lastTick)) / 10;
      cameraFps = measureCameraFps((now - lastTick) / 1000);
      stats.cameraFps = cameraFps;
      lastCount = stats.sent;
      lastTick = now;
      const size = stats.frameSize;
      const [w0, h0] = model.get("frame_size") || [0, 0];
      if (fps !== model.get("fps") || stats.sent !== model.get("frames_sent") || stats.frameScale !== model.get("frame_scale")
          || size[0] !== w0 || size[1] !== h0) {
        model.set({ fps, frames_sent: stats.sent, frame_scale: stats.frameScale, frame_size: [...size] });
        model.save_changes();
      }
    }
  }, 100);

  // "ended" fires only when the browser ends a track (device gone, "Stop sharing"), not when other code calls
  // track.stop(): closing an ipywebrtc CameraStream does that, so the ticker also checks readyState.
  function streamEnded() {
    setStatus("stream ended");
    stop();
  }

  function stop() {
    if (frameCallback !== null && video.cancelVideoFrameCallback) video.cancelVideoFrameCallback(frameCallback);
    frameCallback = null;
    if (current && current.onEnded) current.track.removeEventListener("ended", current.onEnded);
    if (current && current.owned) current.stream.getTracks().forEach((t) => t.stop());
    current = null;
    video.srcObject = null;
    pending.clear();
    captured.clear();
    sentScales.clear();
    frameScale = 1; // a new stream starts at its full size
    shrink = null;
    drawFaces([]);
    drawGrid(null);
  }

  async function start() {
    stop();
    const run = ++starts;
    const source = model.get("source");
    if (source === "frames") { statusEl.textContent = "playing in the kernel"; statusEl.dataset.status = "preview"; return; }
    setStatus(source === "stream" ? "waiting for stream" : "waiting for permission");
    let opened;
    try {
      opened = await openStream(model);
    } catch (err) {
      if (!alive || run !== starts) return;
      const status = statusOf(err, source);
      if (status === "camera unavailable") setStatus(status, err.message);
      else if (status === "permission denied") setStatus(status, `${err.name}: ${err.message}; ${PERMISSION_HINT}`);
      else setStatus(status, `${err.name}: ${err.message}`);
      return;
    }
    if (!alive || run !== starts) { // closed, or the source changed while this stream was being opened
      if (opened.owned) opened.stream.getTracks().forEach((t) => t.stop());
      return;
    }
    current = opened;
    const track = opened.stream.getVideoTracks()[0];
    if (!track || track.readyState === "ended") { setStatus("stream ended"); current = null; return; }
    opened.track = track;
    opened.onEnded = () => { if (current === opened) streamEnded(); };
    track.addEventListener("ended", opened.onEnded); // removed by stop(): a given stream's track outlives the widget
    video.classList.toggle("emow-mirror", model.get("mirror") && source === "camera");
    video.srcObject = opened.stream;
    try {
      await video.play();
    } catch (err) {
      if (alive && current === opened) setStatus("error", `${err.name}: ${err.message}`);
      return;
    }
    if (!alive || current !== opened) return;
    setStatus("running");
    watchFrames();
  }

  const unlisten = [listen(model, "msg:custom", onMessage), listen(model, "change:source change:stream change:width change:height", start)];
  const onNames = () => { // a rename shows at once, not only on the next result's boxes
    const names = model.get("names");
    if (!model.get("label_ids")) return;
    for (const [id, box] of boxes) {
      const who = box.querySelector(".emow-who");
      const name = names[String(id)] || `#${id}`;
      if (who.textContent !== name) who.textContent = name;
    }
  };
  const onMirror = () => video.classList.toggle("emow-mirror", model.get("mirror") && model.get("source") === "camera");
  unlisten.push(listen(model, "change:names", onNames), listen(model, "change:mirror", onMirror));
  start();

  return () => {
    alive = false;
    clearInterval(ticker);
    unlisten.forEach((off) => off());
    stop();
    document.removeEventListener("emow-hover", onHover);
    if (pictureUrl) URL.revokeObjectURL(pictureUrl);
    if (encoder) encoder.close();
    encoder = null;
  };
}

export default { render };
