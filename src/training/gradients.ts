/**
 * Gradients of the tfjs kernels on the path from GPT-2's parameters to its training loss.
 *
 * tfjs-core registers its own gradients only from its ES-module sources
 * (`dist/register_all_gradients.js`, whose extensionless imports Node cannot load); the
 * `@tensorflow/tfjs` union package bundles them, but this project depends on tfjs-core alone.
 * These follow tfjs's definitions, except that a plain matrix product's gradients transpose the
 * operand first: the transposeA/transposeB forms are about 10x slower on the wasm backend
 * (measured: 2048x128 by 128x8192, 2.3 s with transposeA against 0.34 s).
 * A kernel whose gradient is already registered keeps it, except BatchMatMul.
 */
import { tf } from "../backend/backend.js";

type Grads = tf.GradConfig["gradFunc"];

/** Sums a broadcast gradient back down to the shape of the operand it was broadcast from. */
function unbroadcast(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const lead = dy.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) if (i < lead || (shape[i - lead] === 1 && dy.shape[i] !== 1)) axes.push(i);
  return tf.reshape(axes.length ? tf.sum(dy, axes) : dy, shape);
}

/** dy of a sum over `axis` of x, spread back over the summed axes; with the number of terms summed. */
function expandReduced(dy: tf.Tensor, x: tf.Tensor, axis: unknown): { dx: tf.Tensor; terms: number } {
  const shape = x.shape.slice();
  let terms = 1;
  for (const a of tf.util.parseAxisParam(axis as number | number[], x.shape)) {
    terms *= shape[a];
    shape[a] = 1;
  }
  return { dx: tf.mul(tf.reshape(dy, shape), tf.ones(x.shape)), terms };
}

const swapLast = (t: tf.Tensor): tf.Tensor =>
  tf.transpose(
    t,
    [...t.shape.keys()].map((i, _, all) => (i < all.length - 2 ? i : 2 * all.length - 3 - i)),
  );

const one = (dy: tf.Tensor | tf.Tensor[]): tf.Tensor => dy as tf.Tensor;
/** The gradients of a multi-output kernel; tfjs passes a lone tensor when there is one output. */
const many = (dy: tf.Tensor | tf.Tensor[]): tf.Tensor[] => (Array.isArray(dy) ? dy : [dy]);

const matMulGrad: Grads = (dy, [a, b], attrs) => {
  const g = one(dy);
  if (a.rank !== b.rank || a.shape.slice(0, -2).some((d, i) => d !== b.shape[i])) {
    throw new Error("matMul gradient: broadcast batch dimensions are not supported");
  }
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  if (!transposeA && !transposeB) return { a: () => tf.matMul(g, swapLast(b)), b: () => tf.matMul(swapLast(a), g) };
  if (!transposeA) return { a: () => tf.matMul(g, b), b: () => tf.matMul(g, a, true, false) };
  if (!transposeB) return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g) };
  return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
};

const configs: tf.GradConfig[] = [
  {
    kernelName: "Add",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(one(dy), a.shape), b: () => unbroadcast(one(dy), b.shape) }),
  },
  {
    kernelName: "Sub",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(one(dy), a.shape), b: () => unbroadcast(tf.neg(one(dy)), b.shape) }),
  },
  {
    kernelName: "Multiply",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(tf.mul(one(dy), b), a.shape), b: () => unbroadcast(tf.mul(one(dy), a), b.shape) }),
  },
  { kernelName: "Neg", gradFunc: (dy) => ({ x: () => tf.neg(one(dy)) }) },
  { kernelName: "Square", inputsToSave: ["x"], gradFunc: (dy, [x]) => ({ x: () => tf.mul(one(dy), tf.mul(x, 2)) }) },
  // d rsqrt(x) = -0.5 x^(-3/2) = -0.5 y^3
  { kernelName: "Rsqrt", outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tf.mul(one(dy), tf.mul(tf.mul(y, tf.square(y)), -0.5)) }) },
  { kernelName: "Sigmoid", outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tf.mul(one(dy), tf.mul(y, tf.sub(1, y))) }) },
  {
    kernelName: "Softmax",
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => {
      const dyTimesY = tf.mul(one(dy), y);
      return { logits: () => tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [attrs.dim as number], true), y)) };
    },
  },
  { kernelName: "Sum", inputsToSave: ["x"], gradFunc: (dy, [x], attrs) => ({ x: () => expandReduced(one(dy), x, attrs.axis).dx }) },
  {
    kernelName: "Mean",
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => {
      const { dx, terms } = expandReduced(one(dy), x, attrs.axis);
      return { x: () => tf.div(dx, terms) };
    },
  },
  { kernelName: "Cast", gradFunc: (dy) => ({ x: () => tf.clone(one(dy)) }) },
  { kernelName: "Identity", gradFunc: (dy) => ({ x: () => tf.clone(one(dy)) }) },
  { kernelName: "Reshape", inputsToSave: ["x"], gradFunc: (dy, [x]) => ({ x: () => tf.reshape(one(dy), x.shape) }) },
  {
    kernelName: "Transpose",
    gradFunc: (dy, _saved, attrs) => {
      const perm = attrs.perm as number[];
      const inverse = perm.map((_, i) => perm.indexOf(i));
      return { x: () => tf.transpose(one(dy), inverse) };
    },
  },
  {
    kernelName: "GatherV2",
    inputsToSave: ["x", "indices"],
    gradFunc: (dy, [x, indices], attrs) => {
      if (attrs.axis !== 0 || attrs.batchDims !== 0) throw new Error("gather gradient: only axis 0 without batch dimensions is supported");
      const rows = tf.reshape(one(dy), [indices.size, ...x.shape.slice(1)]);
      return { x: () => tf.unsortedSegmentSum(rows, tf.reshape(indices, [-1]) as tf.Tensor1D, x.shape[0]) };
    },
  },
  {
    kernelName: "Concat",
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0].shape)[0];
      return Object.fromEntries(
        tf
          .split(
            one(dy),
            saved.map((t) => t.shape[axis]),
            axis,
          )
          .map((t, i) => [i, () => t]),
      );
    },
  },
  { kernelName: "SplitV", gradFunc: (dy, _saved, attrs) => ({ x: () => tf.concat(many(dy), attrs.axis as number) }) },
  { kernelName: "Unpack", gradFunc: (dy, _saved, attrs) => ({ value: () => tf.stack(many(dy), attrs.axis as number) }) },
  { kernelName: "Pack", gradFunc: (dy, _saved, attrs) => Object.fromEntries(tf.unstack(one(dy), attrs.axis as number).map((t, i) => [i, () => t])) },
];

let prepared = false;

/** Registers the gradients above, once per process; call after initBackend. */
export function prepareAutodiff(): void {
  if (prepared) return;
  prepared = true;
  for (const config of configs) if (!tf.getGradient(config.kernelName)) tf.registerGradient(config);
  tf.registerGradient({ kernelName: "BatchMatMul", inputsToSave: ["a", "b"], gradFunc: matMulGrad });
}
