/** The hits of an answer as files to download: CSV (one row per hit, one column per layer) and JSON. */
import type { Hit } from "./queries.ts";

/** RFC 4180 quoting: a field with a comma, a quote or a line break is quoted, quotes doubled. */
const csvField = (value: string | number): string => {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

export function hitsToCsv(hits: readonly Hit[]): string {
  const layers = [...new Set(hits.flatMap((h) => h.layerScores.map((l) => l.layer)))].sort((a, b) => a - b);
  const header = ["rank", "id", "score", "scored_by", "approx_score", ...layers.map((l) => `layer_${l}`)];
  const rows = hits.map((h) => [
    h.rank,
    h.sequence.id,
    h.score,
    h.scoredBy.toLowerCase(),
    h.approxScore,
    ...layers.map((l) => h.layerScores.find((s) => s.layer === l)?.score ?? ""),
  ]);
  return [header, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

export function hitsToJson(hits: readonly Hit[]): string {
  const plain = hits.map((h) => ({
    rank: h.rank,
    id: h.sequence.id,
    score: h.score,
    scoredBy: h.scoredBy.toLowerCase(),
    approxScore: h.approxScore,
    layerScores: h.layerScores,
    tokenScores: h.tokenScores,
  }));
  return JSON.stringify({ hits: plain }, null, 2) + "\n";
}

/** Saves text as a file through a temporary link (no server round trip). */
export function download(fileName: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
