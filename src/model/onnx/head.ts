/** The LM head on the loss rows, and the top of every capture pass: the loss's gradient back through head and final norm. */
import type { GraphBuilder, Value } from "../../runtime/graph.js";
import { gatherRows, scatterRows } from "./layers.js";
import { type NormSaved, normBackward } from "./norms.js";

/** logits [R, V] = h W^T on the loss rows of the final hidden states [B, T, C]; W [V, C], tied or not. */
export function lmHead(g: GraphBuilder, hidden: Value, rows: Value, weight: Value, width: number): Value {
  return g.scope("lm_head", () => g.op("Gemm", [gatherRows(g, hidden, rows, width), weight], { transB: 1 }));
}

/** The final norm's output and what its backward pass needs. */
export interface FinalNorm {
  y: Value;
  saved: NormSaved;
  gain: Value;
}
/**
 * The top of a capture pass: the head's logits on the loss rows, the loss's gradient dL/dlogits
 * (from `loss`), and from it dL/dx [B, T, C] of the residual stream below the final norm.
 */
export function headBackward(g: GraphBuilder, final: FinalNorm, rows: Value, weight: Value, width: number, loss: (logits: Value) => Value): Value {
  const dlogits = loss(lmHead(g, final.y, rows, weight, width));
  return g.scope("lm_head.backward", () => {
    const dy = scatterRows(g, g.op("MatMul", [dlogits, weight]), rows, final.y, width);
    return normBackward(g, dy, final.saved, final.gain);
  });
}
