/** Guards against NaN or Inf reaching a score silently: the error names the statistic and module. */
import { InputError } from "../util/errors.js";

export function assertFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new InputError(`${what} contains ${values[i]} at element ${i}: the statistics are not finite (diverged model or overflow in the data)`);
    }
  }
}
