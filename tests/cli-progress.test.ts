import { describe, expect, it } from "vitest";
import { LINE_INTERVAL_MS, formatDuration, progressBars } from "../src/cli/progress.js";

/** A progress reporter writing to a fake file (not a terminal) on a clock the test moves. */
function fileReporter() {
  const lines: string[] = [];
  let ms = 0;
  const stream = { isTTY: false, write: (chunk: string) => lines.push(...chunk.split("\n").filter(Boolean)) } as unknown as NodeJS.WritableStream;
  const bars = progressBars(true, { stream, now: () => ms });
  return { ...bars, lines, advance: (by: number) => (ms += by) };
}

describe("progress in a file or a pipe", () => {
  it("formats durations without a 60 in the seconds or minutes place", () => {
    expect(formatDuration(59.4)).toBe("59s");
    expect(formatDuration(59.6)).toBe("1m00s");
    expect(formatDuration(119.6)).toBe("2m00s");
    expect(formatDuration(125)).toBe("2m05s");
    expect(formatDuration(3599.7)).toBe("1h00m");
    expect(formatDuration(7199)).toBe("2h00m");
    expect(formatDuration(Number.NaN)).toBe("--");
  });

  it("writes a line when a phase starts and ends, and between only after the interval and a change", () => {
    const r = fileReporter();
    r.listener({ phase: "covariance", done: 0, total: 1500, tokens: 0 });
    for (let i = 0; i < 7; i++) {
      r.advance(LINE_INTERVAL_MS); // a long first batch: nothing new to say
      r.listener({ phase: "covariance", done: 0, total: 1500, tokens: 0 });
    }
    expect(r.lines).toHaveLength(1);
    r.advance(1000);
    r.listener({ phase: "covariance", done: 10, total: 1500, tokens: 300 });
    expect(r.lines).toHaveLength(2);
    r.advance(1000);
    r.listener({ phase: "covariance", done: 20, total: 1500, tokens: 600 }); // changed, but too soon after the last line
    expect(r.lines).toHaveLength(2);
    r.advance(LINE_INTERVAL_MS);
    r.listener({ phase: "covariance", done: 750, total: 1500, tokens: 22_500 });
    expect(r.lines).toHaveLength(3);
    r.advance(1000);
    r.listener({ phase: "covariance", done: 1500, total: 1500, tokens: 45_000 });
    r.listener({ phase: "eigendecomposition", done: 0, total: 8, unit: "matrices" }); // ends covariance's report
    r.advance(2000);
    r.listener({ phase: "eigendecomposition", done: 8, total: 8, unit: "matrices" });
    r.stop();
    expect(r.lines).toHaveLength(6);
    expect(new Set(r.lines).size).toBe(r.lines.length);
    expect(r.lines[3]).toMatch(/^covariance\s+1,500\/1,500 sequences \(100%\) \| 1,047 tokens\/s \| 43s elapsed$/);
    expect(r.lines[5]).toMatch(/^eigendecomposition 8\/8 matrices \(100%\) \| 4\.0 matrices\/s \| 2s elapsed$/);
    for (const line of r.lines) expect(line).not.toMatch(/[█░|]{5,}/);
  });

  it("counts without a bar, a percentage or a time left when the total is unknown", () => {
    const r = fileReporter();
    r.listener({ phase: "ingest", done: 0, tokens: 0 });
    r.advance(2000);
    r.listener({ phase: "ingest", done: 1200, tokens: 24_000 });
    r.stop();
    expect(r.lines).toEqual([
      expect.stringMatching(/^ingest\s+0 sequences \| 0s elapsed$/),
      expect.stringMatching(/^ingest\s+1,200 sequences \| 12,000 tokens\/s \| 2s elapsed$/),
    ]);
  });

  it("estimates the time left from the rate so far", () => {
    const r = fileReporter();
    r.listener({ phase: "hnsw", done: 0, total: 300, unit: "vectors" });
    r.advance(LINE_INTERVAL_MS * 12); // 60 s for the first 100: 120 s left
    r.listener({ phase: "hnsw", done: 100, total: 300, unit: "vectors" });
    expect(r.lines[1]).toMatch(/^hnsw\s+100\/300 vectors \(33%\) \| 1\.7 vectors\/s \| 1m00s elapsed \| 2m00s left$/);
  });
});

describe("progress of a resumed phase and of named items", () => {
  it("takes the rate and the time left from this run's work only, when a phase resumes part done", () => {
    const r = fileReporter();
    r.listener({ phase: "lambda", done: 600, total: 1000, tokens: 0 }); // 600 sequences done by a killed run
    r.advance(LINE_INTERVAL_MS * 8); // 40 s for the next 100 sequences of 30 tokens: 300 left take 120 s
    r.listener({ phase: "lambda", done: 700, total: 1000, tokens: 3000 });
    expect(r.lines[0]).toMatch(/^lambda\s+600\/1,000 sequences \(60%\) \| 0s elapsed$/);
    expect(r.lines[1]).toMatch(/^lambda\s+700\/1,000 sequences \(70%\) \| 75 tokens\/s \| 40s elapsed \| 2m00s left$/);
  });

  it("names the item being worked on, and estimates the rest from the items finished so far", () => {
    const r = fileReporter();
    r.listener({ phase: "eigendecomposition", done: 2, total: 8, unit: "matrices", item: "layers.1.mlp.up_proj" }); // 2 kept from a killed run
    r.advance(LINE_INTERVAL_MS * 36); // 3 minutes for one matrix: 5 more take 15 minutes
    r.listener({ phase: "eigendecomposition", done: 3, total: 8, unit: "matrices", item: "layers.1.mlp.down_proj" });
    expect(r.lines).toEqual([
      expect.stringMatching(/^eigendecomposition 2\/8 matrices \(25%\) \| layers\.1\.mlp\.up_proj \| 0s elapsed$/),
      expect.stringMatching(/^eigendecomposition 3\/8 matrices \(37%\) \| layers\.1\.mlp\.down_proj \| 0\.0056 matrices\/s \| 3m00s elapsed \| 15m00s left$/),
    ]);
  });
});
