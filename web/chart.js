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

export function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  const pad = { l: 50, r: 60, t: 10, b: 25 };
  ctx.clearRect(0, 0, w, h);
  const fg = getComputedStyle(document.body).color;
  ctx.strokeStyle = fg;
  ctx.fillStyle = fg;
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  const pts = state.steps;
  if (pts.length === 0) return;
  const n = Math.max(state.totalSteps, pts.at(-1).step);
  const x = (s) => pad.l + (w - pad.l - pad.r) * (s / n);
  const maxLoss = Math.max(...pts.map((p) => p.loss)) * 1.05;
  const maxLr = Math.max(...pts.map((p) => p.learning_rate)) * 1.05 || 1;
  const yL = (v) => h - pad.b - (h - pad.t - pad.b) * (v / maxLoss);
  const yR = (v) => h - pad.b - (h - pad.t - pad.b) * (v / maxLr);
  ctx.fillText(maxLoss.toFixed(2), 4, pad.t + 10);
  ctx.fillText("loss", 4, h / 2);
  ctx.fillText(maxLr.toExponential(1), w - pad.r + 4, pad.t + 10);
  ctx.fillText("lr", w - pad.r + 4, h / 2);
  ctx.fillText(`step ${n}`, w - pad.r - 40, h - 6);
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
