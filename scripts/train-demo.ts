/**
 * `npx tsx scripts/train-demo.ts [options]`: trains the demo GPT-2 on demo/corpus.jsonl.gz and
 * writes it to demo/model as a Hugging Face model folder, with its tokenizer (GPT-2's BPE cut to
 * --vocab-size ids), training-log.json and loss-curve.svg. Deterministic given --seed: the same
 * flags give the same weights. With --checkpoint-dir it saves a resumable state every
 * --checkpoint-every steps; --resume-from continues such a run exactly where it stopped.
 */
import path from "node:path";
import { Command } from "commander";
import { integer, positiveNumber } from "../src/cli/options.js";
import { type Batch, makeBatch } from "../src/model/batch.js";
import type { Gpt2Config } from "../src/model/config.js";
import { gpt2ParameterShapes } from "../src/model/gpt2-architecture.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { type Device, deviceFromEnv, parseDevice } from "../src/runtime/device.js";
import { writeTruncatedGpt2Tokenizer } from "../src/tokenizer/truncated-bpe.js";
import { writeFileAtomic, writeJsonAtomic } from "../src/util/atomic-write.js";
import { DEFAULT_ADAMW } from "../src/training/adamw.js";
import { epochBatches } from "../src/training/batches.js";
import { loadTrainingState, saveTrainingState } from "../src/training/checkpoint.js";
import { initGpt2Weights } from "../src/training/init.js";
import { renderLossCurve } from "../src/training/loss-curve.js";
import { learningRate, type ScheduleOptions } from "../src/training/schedule.js";
import { readSplit } from "../src/training/split.js";
import { saveHfGpt2 } from "../src/training/save.js";
import { Gpt2Trainer } from "../src/training/trainer.js";
import type { LogEntry, TrainingLog } from "../src/training/training-log.js";
import { unigramEntropy } from "../src/training/unigram.js";
import { InputError } from "../src/util/errors.js";

const root = path.resolve(import.meta.dirname, "..");

interface Options {
  corpus: string;
  out: string;
  gpt2Tokenizer: string;
  vocabSize: number;
  context: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  epochs: number;
  maxSteps?: number;
  batchTokens: number;
  lr: number;
  minLrRatio: number;
  warmup: number;
  weightDecay: number;
  seed: number;
  logEvery: number;
  evalEvery: number;
  checkpointDir?: string;
  checkpointEvery: number;
  resumeFrom?: string;
  device: Device;
}

function parseOptions(): Options {
  const opts = new Command()
    .option("--corpus <file>", "corpus JSONL (.gz)", path.join(root, "demo/corpus.jsonl.gz"))
    .option("--out <dir>", "model folder to write", path.join(root, "demo/model"))
    .option("--gpt2-tokenizer <dir>", "folder with GPT-2's vocab.json and merges.txt", path.resolve(root, "../shared/fixtures/gpt2-tiny"))
    .option("--vocab-size <n>", "ids kept of GPT-2's BPE, <|endoftext|> included", integer(257), 8192)
    .option("--context <n>", "context length (n_positions)", integer(2), 128)
    .option("--n-embd <n>", "embedding width", integer(1), 128)
    .option("--n-layer <n>", "transformer blocks", integer(1), 4)
    .option("--n-head <n>", "attention heads", integer(1), 4)
    .option("--epochs <n>", "passes over the training sequences", positiveNumber, 7)
    .option("--max-steps <n>", "stop after this many steps (to measure throughput)", integer(1))
    .option("--batch-tokens <n>", "padded tokens per batch", integer(2), 2048)
    .option("--lr <x>", "peak learning rate", positiveNumber, 2e-3)
    .option("--min-lr-ratio <x>", "final learning rate as a fraction of the peak", positiveNumber, 0.1)
    .option("--warmup <n>", "linear warmup steps", integer(1), 100)
    .option("--weight-decay <x>", "AdamW weight decay of matrices and embeddings", Number, DEFAULT_ADAMW.weightDecay)
    .option("--seed <n>", "seed of the initial weights and of the batch order", integer(0), 1)
    .option("--log-every <n>", "steps between log entries", integer(1), 25)
    .option("--eval-every <n>", "steps between held-out evaluations", integer(1), 100)
    .option("--checkpoint-dir <dir>", "where to save a resumable state")
    .option("--checkpoint-every <n>", "steps between resumable states", integer(1), 200)
    .option("--resume-from <dir>", "a --checkpoint-dir to continue from")
    .option("--device <name>", "ONNX Runtime execution provider: cpu or cuda (default: INFLUENCE_DEVICE, else cpu)", (name: string) =>
      parseDevice(name, "--device"),
    )
    .parse()
    .opts<Omit<Options, "device"> & { device?: Device }>();
  // A resumed run restarts its loss average at the checkpoint: keep that on a log boundary.
  if (opts.checkpointEvery % opts.logEvery !== 0) throw new InputError("--checkpoint-every must be a multiple of --log-every");
  return { ...opts, device: opts.device ?? deviceFromEnv() };
}

const count = (seqs: readonly number[][]): number => seqs.reduce((n, s) => n + s.length, 0);

/** The configuration of the model to train: GPT-2's layout at the size the flags give. */
function modelConfig(opts: Options, vocabSize: number): Gpt2Config {
  return {
    architecture: "gpt2",
    vocabSize,
    contextLength: opts.context,
    nEmbd: opts.nEmbd,
    nLayer: opts.nLayer,
    nHead: opts.nHead,
    nInner: 4 * opts.nEmbd,
    layerNormEps: 1e-5,
  };
}

interface Run {
  opts: Options;
  cfg: Gpt2Config;
  train: number[][];
  heldOut: Batch[];
  stepsPerEpoch: number;
  schedule: ScheduleOptions;
  /** The step to stop after (--max-steps may stop before the schedule ends). */
  lastStep: number;
  trainer: Gpt2Trainer;
  log: TrainingLog;
}

/** Training and held-out data, model, optimizer and log, fresh or from --resume-from. */
async function prepare(opts: Options, tokenizer: Tokenizer, backend: string): Promise<Run> {
  const cfg = modelConfig(opts, tokenizer.vocabSize);
  const split = await readSplit(opts.corpus, tokenizer, cfg.contextLength);
  const train = split.train.map((s) => s.tokens);
  const heldOut = split.heldOut.map((s) => s.tokens);
  const stepsPerEpoch = epochBatches(
    train.map((t) => t.length),
    opts.batchTokens,
    opts.seed,
    0,
  ).length;
  const schedule = { peak: opts.lr, warmupSteps: opts.warmup, totalSteps: Math.round(opts.epochs * stepsPerEpoch), floorRatio: opts.minLrRatio };
  const adamw = { ...DEFAULT_ADAMW, weightDecay: opts.weightDecay };
  const parameters = [...gpt2ParameterShapes(cfg).values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
  const run = {
    backend,
    model: { ...cfg, parameters },
    corpus: {
      file: path.relative(root, opts.corpus),
      documents: split.documents,
      heldOutDocuments: split.heldOutDocuments,
      trainSequences: train.length,
      trainTokens: count(train),
      heldOutSequences: heldOut.length,
      heldOutTokens: count(heldOut),
    },
    hyperparameters: { ...schedule, batchTokens: opts.batchTokens, epochs: opts.epochs, stepsPerEpoch, seed: opts.seed, adamw },
  };
  const resumed = opts.resumeFrom ? await loadTrainingState(opts.resumeFrom) : undefined;
  for (const key of ["model", "corpus", "hyperparameters"] as const) {
    if (resumed && JSON.stringify(resumed.log.run[key]) !== JSON.stringify(run[key])) {
      throw new InputError(`${opts.resumeFrom}: was trained with another ${key}; resume with the flags of that run`);
    }
  }
  const trainer = new Gpt2Trainer(cfg, resumed?.weights ?? initGpt2Weights(cfg, opts.seed), adamw, { device: opts.device });
  if (resumed) trainer.optimizer.restore(resumed.optimizer);
  return {
    opts,
    cfg,
    train,
    heldOut: epochBatches(
      heldOut.map((t) => t.length),
      opts.batchTokens,
      0,
      0,
    ).map((b) =>
      makeBatch(
        b.map((i) => heldOut[i]),
        cfg.contextLength,
        cfg.vocabSize,
      ),
    ),
    stepsPerEpoch,
    schedule,
    lastStep: Math.min(opts.maxSteps ?? Infinity, schedule.totalSteps),
    trainer,
    log: { run, unigramEntropy: unigramEntropy(train), entries: resumed?.log.entries ?? [] },
  };
}

/** Steps until lastStep, logging (and writing training-log.json and loss-curve.svg) every --log-every steps. */
async function train({ opts, cfg, train, heldOut, stepsPerEpoch, schedule, lastStep, trainer, log }: Run): Promise<void> {
  const lengths = train.map((t) => t.length);
  const title = `demo GPT-2 (${(log.run.model as { parameters: number }).parameters.toLocaleString("en")} parameters) on WordNet glosses`;
  const last = log.entries.at(-1);
  let tokens = last?.tokens ?? 0;
  let seconds = last?.seconds ?? 0;
  let window = { loss: 0, predicted: 0, gradNorm: 0, steps: 0 };
  const record = async (step: number, evaluate: boolean) => {
    // The rate of the step just taken (of the first one at step 0).
    const entry: LogEntry = { step, epoch: step / stepsPerEpoch, tokens, lr: learningRate(Math.max(0, step - 1), schedule), seconds };
    if (window.steps) Object.assign(entry, { trainLoss: window.loss / window.predicted, gradNorm: window.gradNorm / window.steps });
    if (evaluate) {
      const { loss, tokens: predicted } = await trainer.evaluate(heldOut);
      entry.validLoss = loss / predicted;
    }
    log.entries.push(entry);
    window = { loss: 0, predicted: 0, gradNorm: 0, steps: 0 };
    log.run.tokensPerSecond = Math.round(tokens / Math.max(seconds, 1e-9));
    await writeJsonAtomic(path.join(opts.out, "training-log.json"), log);
    await writeFileAtomic(path.join(opts.out, "loss-curve.svg"), renderLossCurve(log, title));
    const valid = entry.validLoss === undefined ? "" : ` valid ${entry.validLoss.toFixed(3)}`;
    console.error(
      `step ${step}/${lastStep} epoch ${entry.epoch.toFixed(2)} train ${entry.trainLoss?.toFixed(3) ?? "-"}${valid} lr ` +
        `${entry.lr.toExponential(2)} ${log.run.tokensPerSecond} tok/s`,
    );
  };

  let step = trainer.optimizer.step;
  if (step === 0) await record(0, true);
  let epoch = -1;
  let batches: number[][] = [];
  while (step < lastStep) {
    if (Math.floor(step / stepsPerEpoch) !== epoch) {
      epoch = Math.floor(step / stepsPerEpoch);
      batches = epochBatches(lengths, opts.batchTokens, opts.seed, epoch);
    }
    const sequences = batches[step % stepsPerEpoch].map((i) => train[i]);
    const started = performance.now();
    const result = await trainer.step(makeBatch(sequences, cfg.contextLength, cfg.vocabSize), learningRate(step, schedule));
    seconds += (performance.now() - started) / 1000;
    tokens += count(sequences);
    window.loss += result.loss * result.tokens;
    window.predicted += result.tokens;
    window.gradNorm += result.gradNorm;
    window.steps++;
    step++;
    if (step % opts.logEvery === 0 || step === lastStep) await record(step, step % opts.evalEvery === 0 || step === lastStep);
    if (opts.checkpointDir && step % opts.checkpointEvery === 0) {
      await saveTrainingState(opts.checkpointDir, { weights: trainer.weights(), optimizer: trainer.optimizer.state(), log });
    }
  }
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const backend = `onnxruntime ${opts.device}`;
  console.error(`training on ONNX Runtime, device ${opts.device}`);
  // The model folder carries its own tokenizer: GPT-2's BPE cut to --vocab-size ids.
  await writeTruncatedGpt2Tokenizer(opts.gpt2Tokenizer, opts.out, opts.vocabSize, { modelMaxLength: opts.context });
  const tokenizer = await loadTokenizer(opts.out);
  const run = await prepare(opts, tokenizer, backend);
  console.error(
    `${run.train.length} training sequences (${count(run.train)} tokens), ${run.heldOut.length} held-out batches; ${run.stepsPerEpoch} steps per ` +
      `epoch, ${run.lastStep} steps`,
  );
  console.error(`unigram entropy of the training tokens: ${run.log.unigramEntropy.toFixed(3)} nats`);
  await train(run);
  await saveHfGpt2(opts.out, run.cfg, run.trainer.weights(), tokenizer.eosTokenId as number);
  await run.trainer.release();
  console.error(`wrote ${opts.out}`);
}

await main();
