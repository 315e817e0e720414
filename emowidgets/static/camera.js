// CameraWidget: preview a MediaStream, send JPEG frames to the kernel, draw the results it sends back.
// At most `max_in_flight` frames are un-acked; camera frames arriving meanwhile are skipped (never queued).

const DEFAULT_SIZE = { camera: [640, 480], screen: [1280, 720] };
const ACK_TIMEOUT_MS = 5000; // a frame never acked (kernel restarted) stops counting as in flight
const MAX_SAMPLES = 10000;

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
  stage.append(video, overlay);
  const statusEl = document.createElement("div");
  statusEl.className = "emow-status";
  el.append(stage, statusEl);

  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d");
  // Measurements for tests and benchmarks (performance.now() milliseconds), read via el.emowStats.
  const stats = { cameraFrames: 0, sent: 0, sentAsText: 0, acked: 0, results: 0, latencies: [], faces: [], kernelMs: [], encodeMs: [], ackMs: [] };
  el.emowStats = stats;

  let alive = true;
  let current = null; // { stream, owned }
  let seq = 0;
  let fresh = false; // a camera frame arrived that was not sent yet
  let lastFrameAt = 0;
  let lastDrawnSeq = 0;
  const pending = new Map(); // seq -> send time, until acked
  const captured = new Map(); // seq -> capture time, until its result is drawn
  const boxes = [];

  function setStatus(status, error = "") {
    statusEl.textContent = error ? `${status}: ${error}` : status;
    statusEl.dataset.status = status;
    if (model.get("status") !== status || model.get("error") !== error) {
      model.set({ status, error });
      model.save_changes();
    }
  }

  function pump() {
    if (!alive || !current || !fresh || pending.size >= model.get("max_in_flight")) return;
    const w = video.videoWidth, h = video.videoHeight;
    if (video.readyState < 2 || !w || !h) return;
    fresh = false;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const t = performance.now();
    ctx.drawImage(video, 0, 0, w, h);
    const s = ++seq;
    const source = current; // encoding is async: a frame whose stream has since stopped is not sent
    pending.set(s, t);
    captured.set(s, t);
    canvas.toBlob(async (blob) => {
      if (!alive || !blob || current !== source) { pending.delete(s); return; }
      const text = model.get("transport") === "text"; // set by the kernel when buffers are lost on the way
      const buf = text ? await base64Of(blob) : await blob.arrayBuffer();
      if (!alive || current !== source) { pending.delete(s); return; }
      const header = { type: "frame", seq: s, timestamp_ms: Math.round(performance.timeOrigin + t), width: w, height: h };
      const sentAt = performance.now();
      if (text) {
        model.send({ ...header, jpeg: buf });
        stats.sentAsText++;
      } else model.send(header, undefined, [buf]);
      pending.set(s, sentAt);
      stats.sent++;
      if (stats.encodeMs.length < MAX_SAMPLES) stats.encodeMs.push(sentAt - t);
    }, "image/jpeg", model.get("quality"));
  }

  function onFrame() {
    if (!alive) return;
    stats.cameraFrames++;
    lastFrameAt = performance.now();
    fresh = true;
    pump();
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  }

  function drawFaces(faces) {
    const mirror = model.get("mirror") && model.get("source") === "camera";
    while (boxes.length < faces.length) {
      const box = document.createElement("div");
      box.className = "emow-box";
      const label = document.createElement("span");
      label.className = "emow-label";
      box.append(label);
      overlay.append(box);
      boxes.push(box);
    }
    boxes.forEach((box, i) => {
      const face = faces[i];
      box.hidden = !face;
      if (!face) return;
      const [x, y, w, h] = face.box;
      box.style.left = `${(mirror ? 1 - x - w : x) * 100}%`;
      box.style.top = `${y * 100}%`;
      box.style.width = `${w * 100}%`;
      box.style.height = `${h * 100}%`;
      box.classList.toggle("emow-inside", y < 0.06);
      box.dataset.label = face.label;
      box.firstChild.textContent = `${face.label} ${face.score.toFixed(2)}`;
    });
  }

  function ack(seq) {
    const sentAt = pending.get(seq);
    if (sentAt !== undefined && pending.delete(seq)) {
      stats.acked++;
      if (stats.ackMs.length < MAX_SAMPLES) stats.ackMs.push(performance.now() - sentAt);
    }
  }

  function onMessage(msg) {
    if (!msg || !alive) return;
    if (msg.type === "ack") {
      ack(msg.seq);
      pump();
    } else if (msg.type === "result") {
      for (const s of [...pending.keys()]) if (s <= msg.seq) ack(s); // a result acks its frame and older ones
      pump();
    }
    // A result can arrive after the stream stopped (its frame was in flight): don't draw it on a dead stream.
    if (msg.type === "result" && current && msg.seq > lastDrawnSeq) {
      lastDrawnSeq = msg.seq;
      drawFaces(msg.faces);
      const now = performance.now();
      const t = captured.get(msg.seq);
      for (const s of captured.keys()) if (s <= msg.seq) captured.delete(s);
      stats.results++;
      if (t !== undefined && stats.latencies.length < MAX_SAMPLES) {
        stats.latencies.push(now - t);
        stats.faces.push(msg.faces.length);
        stats.kernelMs.push(msg.ms);
      }
    }
  }

  let lastCount = 0;
  let lastTick = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    for (const [s, t] of pending) if (now - t > ACK_TIMEOUT_MS) pending.delete(s);
    if (current && current.track && current.track.readyState === "ended") streamEnded();
    if (current && now - lastFrameAt > 250) { fresh = true; pump(); } // rVFC stalls while hidden
    if (now - lastTick >= 1000) {
      const fps = Math.round(((stats.sent - lastCount) * 10000) / (now - lastTick)) / 10;
      lastCount = stats.sent;
      lastTick = now;
      if (fps !== model.get("fps") || stats.sent !== model.get("frames_sent")) {
        model.set({ fps, frames_sent: stats.sent });
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
    if (current && current.owned) current.stream.getTracks().forEach((t) => t.stop());
    current = null;
    video.srcObject = null;
    pending.clear();
    captured.clear();
    drawFaces([]);
  }

  async function start() {
    stop();
    const source = model.get("source");
    setStatus(source === "stream" ? "waiting for stream" : "waiting for permission");
    let opened;
    try {
      opened = await openStream(model);
    } catch (err) {
      if (!alive) return;
      const status = statusOf(err, source);
      if (status === "camera unavailable") setStatus(status, err.message);
      else if (status === "permission denied") setStatus(status, `${err.name}: ${err.message}; ${PERMISSION_HINT}`);
      else setStatus(status, `${err.name}: ${err.message}`);
      return;
    }
    if (!alive) {
      if (opened.owned) opened.stream.getTracks().forEach((t) => t.stop());
      return;
    }
    current = opened;
    const track = opened.stream.getVideoTracks()[0];
    if (!track || track.readyState === "ended") { setStatus("stream ended"); current = null; return; }
    opened.track = track;
    track.addEventListener("ended", () => { if (current === opened) streamEnded(); });
    video.classList.toggle("emow-mirror", model.get("mirror") && source === "camera");
    video.srcObject = opened.stream;
    try {
      await video.play();
    } catch (err) {
      if (alive) setStatus("error", `${err.name}: ${err.message}`);
      return;
    }
    setStatus("running");
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  }

  model.on("msg:custom", onMessage);
  model.on("change:source change:stream change:width change:height", start);
  model.on("change:mirror", () => video.classList.toggle("emow-mirror", model.get("mirror") && model.get("source") === "camera"));
  start();

  return () => {
    alive = false;
    clearInterval(ticker);
    model.off("msg:custom", onMessage);
    model.off("change:source change:stream change:width change:height", start);
    stop();
  };
}

export default { render };
