// The loss and learning-rate chart of the current run, drawn on a canvas at most once a frame.
// The step log table beside it carries the same numbers for screen readers and the tests.
import { $, state } from "./ui.js";

let pending = false;

/** Redraws the chart at the next frame (steps can arrive faster than frames). */
export function scheduleChart() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; drawChart(); });
}

/** Up to about `count` round values from 0 to `max` (1, 2 or 5 times a power of ten apart). */
function ticks(max, count) {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const values = [];
  for (let v = 0; v <= max * (1 + 1e-9); v += step) values.push(v);
  return values;
}

/** A tick's label: few digits, exponent notation for small learning rates. */
const label = (v) => (v === 0 ? "0" : Math.abs(v) < 0.01 ? v.toExponential(0) : String(Number(v.toPrecision(3))));

export function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  const pad = { l: 56, r: 64, t: 12, b: 40 };
  ctx.clearRect(0, 0, w, h);
  const fg = getComputedStyle(document.body).color;
  ctx.strokeStyle = fg;
  ctx.fillStyle = fg;
  ctx.font = "12px system-ui, sans-serif";
  ctx.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  const pts = state.steps;
  const n = Math.max(state.totalSteps, pts.at(-1)?.step ?? 0, 1);
  const maxLoss = pts.length ? Math.max(...pts.map((p) => p.loss)) * 1.05 : 1;
  const maxLr = (pts.length ? Math.max(...pts.map((p) => p.learning_rate)) * 1.05 : 0) || 1e-3;
  const x = (s) => pad.l + (w - pad.l - pad.r) * (s / n);
  const yL = (v) => h - pad.b - (h - pad.t - pad.b) * (v / maxLoss);
  const yR = (v) => h - pad.b - (h - pad.t - pad.b) * (v / maxLr);
  // The axes' values: loss on the left, learning rate on the right, steps below.
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  for (const v of ticks(maxLoss, 4)) ctx.fillText(label(v), pad.l - 6, yL(v));
  ctx.textAlign = "left";
  for (const v of ticks(maxLr, 4)) ctx.fillText(label(v), w - pad.r + 6, yR(v));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of ticks(n, 6).filter(Number.isInteger)) ctx.fillText(String(v), x(v), h - pad.b + 4);
  ctx.fillText("step", pad.l + (w - pad.l - pad.r) / 2, h - pad.b + 20);
  ctx.textBaseline = "alphabetic";
  ctx.textAlign = "left";
  ctx.fillText("loss (solid)", pad.l + 6, pad.t + 14);
  ctx.textAlign = "right";
  ctx.fillText("learning rate (dashed)", w - pad.r - 6, pad.t + 14);
  ctx.textAlign = "left";
  if (pts.length === 0) return;
  const line = (y, key, dash, color) => {
    ctx.beginPath();
    ctx.setLineDash(dash);
    ctx.strokeStyle = color;
    pts.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.step), y(p[key])));
    ctx.stroke();
  };
  line(yR, "learning_rate", [4, 4], "#888");
  line(yL, "loss", [], "#b4410e");
  ctx.setLineDash([]);
}
