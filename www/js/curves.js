// The Train panel's live curves: the reconstruction term, the KL term and -ELBO per example
// against the step, each smoothed over a window of steps so that batch noise does not hide the
// trend. Drawing only, in the language shown: the panel keeps the history.
import { t, num } from "./i18n.js";

const SERIES = [
  { key: "loss", name: "train.curveLoss", color: "#111" },
  { key: "reconstruction", name: "train.curveReconstruction", color: "#1f77b4" },
  { key: "kl", name: "train.curveKl", color: "#d62728" },
];

/** Draws `history` ([{reconstruction, kl, loss}], one per step) on `canvas`: the two terms on
 * their own scale on the right (the KL term is much smaller). */
export function drawCurves(canvas, history) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 28;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.font = "11px system-ui";
  if (history.length < 2) {
    ctx.fillStyle = "#888";
    ctx.fillText(t("train.curvesEmpty"), pad, H / 2);
    return;
  }
  // At most one point per pixel column, each the mean of its steps.
  const cols = Math.min(history.length, W - 2 * pad);
  const per = history.length / cols;
  const mean = (key, c) => {
    const a = Math.floor(c * per), b = Math.max(a + 1, Math.floor((c + 1) * per));
    let s = 0;
    for (let i = a; i < b; i++) s += history[i][key];
    return s / (b - a);
  };
  const series = SERIES.map((s) => ({ ...s, ys: Array.from({ length: cols }, (_, c) => mean(s.key, c)) }));
  // -ELBO and reconstruction share the left scale; KL has the right one.
  const range = (ys) => { const lo = Math.min(...ys), hi = Math.max(...ys); return [lo, hi > lo ? hi : lo + 1]; };
  const left = range(series[0].ys.concat(series[1].ys)), right = range(series[2].ys);
  const y = ([lo, hi], v) => H - pad - ((v - lo) / (hi - lo)) * (H - 2 * pad);
  const x = (c) => pad + (c * (W - 2 * pad)) / Math.max(1, cols - 1);
  let labelX = pad; // the series' names side by side, each as wide as it is in this language
  series.forEach((s, i) => {
    const r = i === 2 ? right : left;
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    s.ys.forEach((v, c) => (c ? ctx.lineTo(x(c), y(r, v)) : ctx.moveTo(x(c), y(r, v))));
    ctx.stroke();
    ctx.fillStyle = s.color;
    const label = t("train.curveValue", { name: t(s.name), value: s.ys[cols - 1] });
    ctx.fillText(label, labelX, 12);
    labelX += ctx.measureText(label).width + 16;
  });
  ctx.fillStyle = "#888";
  ctx.fillText(num(left[1], "int"), 2, pad);
  ctx.fillText(num(left[0], "int"), 2, H - pad);
  ctx.textAlign = "right";
  ctx.fillText(t("train.curveValue", { name: t("train.curveKl"), value: right[1] }), W - 2, pad);
  ctx.fillText(t("train.curveStep", { n: history.length }), W - 2, H - 6);
  ctx.textAlign = "left";
}
