/**
 * Progress of long phases on stderr: a redrawn bar on a terminal; in a file or a pipe, plain lines
 * (one when a phase starts, one when it ends, and at most one per LINE_INTERVAL_MS in between).
 */
import cliProgress from "cli-progress";
import type { ProgressEvent, ProgressListener } from "../util/progress.js";

/** Shortest gap between two progress lines written to a file or a pipe. */
export const LINE_INTERVAL_MS = 5000;

/** 59s, 2m05s, 1h07m; rounded before splitting, so 119.6 s is 2m00s and never 1m60s. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(seconds / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** A rate over less time than this is noise (a first batch that arrived at once), so none is shown. */
const RATE_MIN_SECONDS = 1;

const count = (n: number) => Math.round(n).toLocaleString("en-US");
const rate = (perSecond: number) => (perSecond >= 10 ? count(perSecond) : perSecond.toPrecision(2));

/** Where this run's part of a phase began: a resumed phase starts with the work of an earlier run done. */
export interface PhaseStart {
  done: number;
  tokens: number;
}

/**
 * "120/1,500 sequences (8%) | h.0.mlp.c_fc | 3,400 tokens/s | 12s elapsed | 2m10s left", without
 * the phase. Rate and time left are of this run: from `start`, over `seconds` since.
 */
export function progressText(e: ProgressEvent, seconds: number, start: PhaseStart = { done: 0, tokens: 0 }): string {
  const unit = e.unit ?? "sequences";
  const parts = [
    e.total === undefined
      ? `${count(e.done)} ${unit}`
      : `${count(e.done)}/${count(e.total)} ${unit} (${e.total > 0 ? Math.floor((100 * e.done) / e.total) : 100}%)`,
  ];
  if (e.item !== undefined) parts.push(e.item);
  const done = e.done - start.done;
  if (seconds >= RATE_MIN_SECONDS && done > 0)
    parts.push(e.tokens === undefined ? `${rate(done / seconds)} ${unit}/s` : `${count((e.tokens - start.tokens) / seconds)} tokens/s`);
  parts.push(`${formatDuration(seconds)} elapsed`);
  if (e.total !== undefined && done > 0 && e.done < e.total) parts.push(`${formatDuration((seconds / done) * (e.total - e.done))} left`);
  return parts.join(" | ");
}

export interface ProgressOutput {
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** Milliseconds, monotonic. */
  now: () => number;
}

const PHASE_WIDTH = 18;

/** A listener that reports each phase; returns it with a function that ends the last phase's report. */
export function progressBars(
  enabled = true,
  output: ProgressOutput = { stream: process.stderr, now: () => performance.now() },
): { listener: ProgressListener; stop: () => void } {
  const { stream, now } = output;
  let phase: string | undefined;
  let started = 0;
  let origin: PhaseStart = { done: 0, tokens: 0 };
  let bar: cliProgress.SingleBar | undefined;
  // File or pipe: the last event, the last line written and when.
  let latest: ProgressEvent | undefined;
  let written: { done: number; at: number } | undefined;

  const writeLine = (e: ProgressEvent) => {
    const at = now();
    stream.write(`${e.phase.padEnd(PHASE_WIDTH)} ${progressText(e, (at - started) / 1000, origin)}\n`);
    written = { done: e.done, at };
  };
  const stop = () => {
    bar?.stop();
    bar = undefined;
    if (latest && written?.done !== latest.done) writeLine(latest);
    latest = undefined;
    phase = undefined;
  };
  const listener = (e: ProgressEvent) => {
    if (!enabled) return;
    if (e.phase !== phase) {
      stop();
      phase = e.phase;
      started = now();
      origin = { done: e.done, tokens: e.tokens ?? 0 };
      written = undefined;
      if (stream.isTTY) {
        // An unknown total gets no bar: a full one would claim the phase is done.
        const format = e.total === undefined ? "{phase} {text}" : "{phase} |{bar}| {text}";
        bar = new cliProgress.SingleBar({ format, stream, hideCursor: false, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
        bar.start(e.total ?? 0, 0, { phase: e.phase.padEnd(PHASE_WIDTH), text: "" });
      }
    }
    if (bar) {
      if (e.total !== undefined) bar.setTotal(e.total);
      bar.update(e.done, { text: progressText(e, (now() - started) / 1000, origin) });
      return;
    }
    latest = e;
    if (!written || (e.done !== written.done && now() - written.at >= LINE_INTERVAL_MS)) writeLine(e);
  };
  return { listener, stop };
}
