// The camera widget's frame sizing (static/camera.js), as the pure functions render() calls: run with
// `node --test tests/js/sizing.test.mjs` (tests/test_js_units.py runs every tests/js/*.test.mjs in the suite).
import assert from "node:assert/strict";
import { test } from "node:test";

import camera, { nextFrameScale, SCALE_STEPS, SHRINK_HOLD_MS, SHRINK_MARGIN, targetScale } from
  "../../emowidgets/static/camera.js";

const FULL = { frameScale: 1, shrink: null };
const ask = (over) => ({ sent: 1, asked: 1, min: 0.25, resize: true, now: 0, ...over });

// Feed results asking for `asked` (their frames sent at the current scale) every `every` ms from `start` to `end`.
function feed(state, asked, { start = 0, end, every = 33, min = 0.25 }) {
  for (let now = start; now <= end; now += every) {
    state = nextFrameScale(state, ask({ sent: state.frameScale, asked: asked / state.frameScale, min, now }));
  }
  return state;
}

test("the default export is still anywidget's { render }", () => {
  assert.equal(typeof camera.render, "function");
});

test("targetScale rounds UP to a step and clamps to [min, 1]", () => {
  assert.equal(targetScale(1, 0.5, 0.25), 0.5); // a step exactly
  assert.equal(targetScale(1, 0.49, 0.25), 0.5); // between 0.375 and 0.5: the larger
  assert.equal(targetScale(1, 0.38, 0.0625), 0.5);
  assert.equal(targetScale(1, 0.37, 0.0625), 0.375);
  assert.equal(targetScale(0.5, 0.5, 0.0625), 0.25); // relative to the scale its frame went at
  assert.equal(targetScale(1, 0.01, 0.25), 0.25); // never below min
  assert.equal(targetScale(1, 0.01, 0.2), 0.25); // min between steps: rounded up too
  assert.equal(targetScale(0.5, 4, 0.25), 1); // never above 1
  for (const step of SCALE_STEPS) assert.equal(targetScale(1, step, SCALE_STEPS.at(-1)), step);
});

test("bigger at once", () => {
  const half = { frameScale: 0.5, shrink: null };
  assert.deepEqual(nextFrameScale(half, ask({ sent: 0.5, asked: 1.2, now: 5 })), { frameScale: 0.75, shrink: null });
  assert.deepEqual(nextFrameScale(half, ask({ sent: 0.5, asked: 3 })), FULL);
  // a pending shrink is dropped when a result asks for more than the current scale
  const holding = { frameScale: 0.5, shrink: { since: 0, to: 0.25 } };
  assert.deepEqual(nextFrameScale(holding, ask({ sent: 0.5, asked: 1.6, now: 999 })), { frameScale: 1, shrink: null });
});

test("smaller only after SHRINK_HOLD_MS of results asking for it", () => {
  let state = nextFrameScale(FULL, ask({ asked: 0.3, now: 100 }));
  assert.deepEqual(state, { frameScale: 1, shrink: { since: 100, to: 0.375 } });
  state = nextFrameScale(state, ask({ asked: 0.3, now: 100 + SHRINK_HOLD_MS - 1 }));
  assert.equal(state.frameScale, 1);
  state = nextFrameScale(state, ask({ asked: 0.3, now: 100 + SHRINK_HOLD_MS }));
  assert.deepEqual(state, { frameScale: 0.375, shrink: null });
  // a steady stream of results gets there too, and not a result sooner
  assert.equal(feed(FULL, 0.3, { end: SHRINK_HOLD_MS - 1 }).frameScale, 1);
  assert.equal(feed(FULL, 0.3, { end: SHRINK_HOLD_MS + 33 }).frameScale, 0.375);
});

test("a result that asks for the current scale again ends the hold", () => {
  let state = nextFrameScale(FULL, ask({ asked: 0.3, now: 0 }));
  state = nextFrameScale(state, ask({ asked: 1, now: 500 }));
  assert.deepEqual(state, FULL);
  state = nextFrameScale(state, ask({ asked: 0.3, now: 600 }));
  assert.deepEqual(state.shrink, { since: 600, to: 0.375 }); // the hold starts over
  assert.equal(nextFrameScale(state, ask({ asked: 0.3, now: 600 + SHRINK_HOLD_MS - 1 })).frameScale, 1);
});

test("shrinking keeps SHRINK_MARGIN to spare", () => {
  // 0.5 is a step; asked exactly 0.5 leaves no margin, so frames stay at 0.75 rather than flip between two steps
  assert.equal(feed(FULL, 0.5, { end: 2 * SHRINK_HOLD_MS }).frameScale, 0.75);
  assert.equal(feed(FULL, 0.5 / SHRINK_MARGIN, { end: 2 * SHRINK_HOLD_MS }).frameScale, 0.5);
  // at 0.75 a result asking for 0.7 (0.77 with the margin) keeps 0.75 and starts no hold
  assert.deepEqual(nextFrameScale({ frameScale: 0.75, shrink: null }, ask({ sent: 0.75, asked: 0.7 / 0.75 })),
    { frameScale: 0.75, shrink: null });
});

test("the largest scale asked for during the hold wins", () => {
  let state = nextFrameScale(FULL, ask({ asked: 0.2, now: 0 })); // 0.25
  state = nextFrameScale(state, ask({ asked: 0.6, now: 400 })); // 0.75: the largest
  state = nextFrameScale(state, ask({ asked: 0.3, now: 800 })); // 0.375
  assert.deepEqual(state.shrink, { since: 0, to: 0.75 });
  state = nextFrameScale(state, ask({ asked: 0.2, now: SHRINK_HOLD_MS }));
  assert.deepEqual(state, { frameScale: 0.75, shrink: null });
});

test("never below min_frame_scale", () => {
  assert.equal(feed(FULL, 0.01, { end: 2 * SHRINK_HOLD_MS, min: 0.25 }).frameScale, 0.25);
  assert.equal(feed(FULL, 0.01, { end: 2 * SHRINK_HOLD_MS, min: 0.0625 }).frameScale, 0.0625);
  const atMin = { frameScale: 0.25, shrink: null };
  assert.deepEqual(nextFrameScale(atMin, ask({ sent: 0.25, asked: 0.1, now: 5000 })), atMin);
});

test("resize=false sends full frames and forgets a pending shrink", () => {
  const holding = { frameScale: 0.5, shrink: { since: 0, to: 0.25 } };
  assert.deepEqual(nextFrameScale(holding, ask({ resize: false, sent: 0.5, asked: 0.1, now: 5000 })), FULL);
  assert.deepEqual(nextFrameScale(holding, ask({ resize: false, sent: undefined, asked: undefined })), FULL);
});

test("a result with a bad or missing scale, or for a frame not known, changes nothing", () => {
  const holding = { frameScale: 0.5, shrink: { since: 0, to: 0.25 } };
  for (const asked of [undefined, null, 0, -1, NaN, "0.5"]) {
    assert.equal(nextFrameScale(holding, ask({ sent: 0.5, asked, now: 5000 })), holding, String(asked));
  }
  for (const sent of [undefined, 0, NaN]) {
    assert.equal(nextFrameScale(holding, ask({ sent, asked: 0.1, now: 5000 })), holding, String(sent));
  }
});
