/**
 * Captures as tfjs tensors, for the stages whose products still run on tfjs (covariances, Lambda,
 * scoring, whitening and projection): the model passes run on ONNX Runtime and hand back host
 * arrays, uploaded here, in one place, until those products move to the engine too.
 */
import { tf } from "../backend/backend.js";
import type { Batch } from "../model/batch.js";
import { type CausalLM, type LossSpec, type TrackedModule, inputWidth } from "../model/model.js";

export interface TensorModuleCapture {
  module: TrackedModule;
  /** Layer inputs with a trailing 1, [rows, in + 1]; padding rows are zero. */
  a: tf.Tensor2D;
  /** Loss gradients with respect to the pre-activation output, [rows, out]; zero on padding. */
  g: tf.Tensor2D;
}

export interface TensorCapture {
  batch: Batch;
  modules: TensorModuleCapture[];
  /** Summed loss of each sequence under the spec. */
  losses: Float64Array;
  dispose(): void;
}

/** A model's capture pass, with every module's a and g on the tfjs backend; the caller disposes them. */
export async function captureTensors(model: CausalLM, sequences: readonly (readonly number[])[], spec: LossSpec): Promise<TensorCapture> {
  const { batch, modules, losses } = await model.capture(sequences, spec);
  const rows = batch.size * batch.length;
  const tensors = modules.map(({ module, a, g }) => ({
    module,
    a: tf.tensor2d(a, [rows, inputWidth(module)]),
    g: tf.tensor2d(g, [rows, module.outFeatures]),
  }));
  return { batch, modules: tensors, losses, dispose: () => tensors.forEach((m) => tf.dispose([m.a, m.g])) };
}
