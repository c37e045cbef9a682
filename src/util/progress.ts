/** Progress of a long phase, reported by library code and drawn by the CLI. */
export interface ProgressEvent {
  phase: string;
  /** Units done so far and the total (sequences, or rows), when known. */
  done: number;
  total?: number;
  tokens: number;
}

export type ProgressListener = (event: ProgressEvent) => void;
