/** Progress bars on stderr for long phases: count, tokens/s and time left. */
import cliProgress from "cli-progress";
import type { ProgressEvent, ProgressListener } from "../util/progress.js";

function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "--";
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A listener that draws one bar per phase; returns it with a function that closes the last bar. */
export function progressBars(enabled = true): { listener: ProgressListener; stop: () => void } {
  let bar: cliProgress.SingleBar | undefined;
  let phase: string | undefined;
  let started = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  const listener = (e: ProgressEvent) => {
    if (!enabled) return;
    if (e.phase !== phase) {
      stop();
      phase = e.phase;
      started = performance.now();
      bar = new cliProgress.SingleBar(
        {
          format: "{phase} |{bar}| {value}/{totalText} | {rate} tok/s | {elapsed} elapsed | {left} left",
          stream: process.stderr,
          hideCursor: false,
          noTTYOutput: true,
          notTTYSchedule: 5000,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(e.total ?? 0, 0, { phase: e.phase.padEnd(18), totalText: "?", rate: "0", elapsed: "0s", left: "--" });
    }
    const seconds = (performance.now() - started) / 1000;
    const left = e.total && e.done > 0 ? (seconds / e.done) * (e.total - e.done) : NaN;
    if (e.total !== undefined) bar?.setTotal(e.total);
    bar?.update(e.done, {
      totalText: e.total ?? "?",
      rate: seconds > 0 ? Math.round(e.tokens / seconds).toLocaleString("en-US") : "0",
      elapsed: formatSeconds(seconds),
      left: formatSeconds(left),
    });
  };
  return { listener, stop };
}
