/** Progress of a long phase, reported by library code and drawn by the CLI. */
export interface ProgressEvent {
  phase: string;
  /** Units done so far and the total, when known. */
  done: number;
  total?: number;
  /** What `done` and `total` count; sequences when absent. */
  unit?: string;
  /** Tokens processed so far, in phases that process tokens (their rate is then tokens/s). */
  tokens?: number;
  /** What is being worked on now, when the phase works through named items (a module's name). */
  item?: string;
}

export type ProgressListener = (event: ProgressEvent) => void;
