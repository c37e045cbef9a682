/** A small hand-written SVG of a training log: train and validation loss against tokens seen. */
import type { TrainingLog } from "./training-log.js";

const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { left: 56, right: 16, top: 32, bottom: 44 };

/** Round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const unit = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * unit).find((s) => s >= raw) ?? 10 * unit;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

const escapeXml = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function renderLossCurve(log: TrainingLog, title: string): string {
  const points = (key: "trainLoss" | "validLoss") => log.entries.filter((e) => e[key] !== undefined).map((e) => ({ x: e.tokens / 1e6, y: e[key] as number }));
  const train = points("trainLoss");
  const valid = points("validLoss");
  const all = [...train, ...valid];
  const xMax = Math.max(...all.map((p) => p.x), 1e-6);
  const yMin = Math.floor(Math.min(...all.map((p) => p.y), log.unigramEntropy) - 0.5);
  const yMax = Math.ceil(Math.max(...all.map((p) => p.y), log.unigramEntropy));
  const sx = (x: number) => MARGIN.left + (x / xMax) * (WIDTH - MARGIN.left - MARGIN.right);
  const sy = (y: number) => HEIGHT - MARGIN.bottom - ((y - yMin) / (yMax - yMin)) * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const f = (v: number) => v.toFixed(1);
  const line = (ps: { x: number; y: number }[], color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${ps.map((p) => `${f(sx(p.x))},${f(sy(p.y))}`).join(" ")}"/>`;
  const dots = (ps: { x: number; y: number }[], color: string) =>
    ps.map((p) => `<circle cx="${f(sx(p.x))}" cy="${f(sy(p.y))}" r="3" fill="${color}"/>`).join("");
  const text = (x: number, y: number, s: string, anchor = "middle") => `<text x="${f(x)}" y="${f(y)}" text-anchor="${anchor}">${escapeXml(s)}</text>`;
  const xTicks = ticks(0, xMax, 6).map(
    (v) =>
      `<line x1="${f(sx(v))}" x2="${f(sx(v))}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom + 4}" stroke="#444"/>${text(sx(v), HEIGHT - MARGIN.bottom + 17, String(v))}`,
  );
  const yTicks = ticks(yMin, yMax, 6).map(
    (v) =>
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${f(sy(v))}" y2="${f(sy(v))}" stroke="#ddd"/>${text(MARGIN.left - 6, sy(v) + 4, String(v), "end")}`,
  );
  const legend = [
    ["#1f77b4", "train"],
    ["#d62728", "validation (held out)"],
    ["#888", `unigram entropy ${log.unigramEntropy.toFixed(2)}`],
  ].map(
    ([color, label], i) =>
      `<rect x="${WIDTH - 210}" y="${MARGIN.top + 8 + i * 18}" width="14" height="3" fill="${color}"/>${text(WIDTH - 190, MARGIN.top + 13 + i * 18, label, "start")}`,
  );
  return (
    [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
      `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
      ...yTicks,
      ...xTicks,
      `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="#444"/>`,
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}" stroke="#444"/>`,
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${f(sy(log.unigramEntropy))}" y2="${f(sy(log.unigramEntropy))}" stroke="#888" stroke-dasharray="6 4"/>`,
      line(train, "#1f77b4"),
      line(valid, "#d62728"),
      dots(valid, "#d62728"),
      text(WIDTH / 2, 20, title),
      text((MARGIN.left + WIDTH - MARGIN.right) / 2, HEIGHT - 8, "tokens trained on (millions)"),
      `<text transform="translate(16 ${f((MARGIN.top + HEIGHT - MARGIN.bottom) / 2)}) rotate(-90)" text-anchor="middle">loss (nats per token)</text>`,
      ...legend,
      `</svg>`,
    ].join("\n") + "\n"
  );
}
