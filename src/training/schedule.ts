/** Learning rate at each optimizer step: linear warmup, then cosine decay to a floor. */
export interface ScheduleOptions {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  /** The final rate as a fraction of the peak. */
  floorRatio: number;
}

/** Rate for step 0..totalSteps-1; warmup starts above zero so that the first step already moves. */
export function learningRate(step: number, { peak, warmupSteps, totalSteps, floorRatio }: ScheduleOptions): number {
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  const floor = peak * floorRatio;
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
