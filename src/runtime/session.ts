/**
 * ONNX Runtime sessions: one per model and graph variant, created on first use and reused. A graph
 * that ONNX Runtime rejects, at load or at run time, is reported with its architecture, graph and
 * node.
 */
import os from "node:os";
import ort from "onnxruntime-node";
import { type Device, deviceFromEnv, executionProviders } from "./device.js";
import { GraphBuildError, type GraphBuilder } from "./graph.js";

export interface RuntimeOptions {
  /** Execution provider; `INFLUENCE_DEVICE` (cpu when unset) by default. */
  device?: Device;
  /** Threads of one session's operators; the machine's cores by default. */
  threads?: number;
}

/**
 * Sessions for one of `workers` threads that each hold a model: the cores shared out among them
 * (at least one thread each), so that a pool does not oversubscribe the CPU.
 */
export function workerRuntime(device: Device | undefined, workers: number, cores = os.availableParallelism()): Required<RuntimeOptions> {
  return { device: device ?? deviceFromEnv(), threads: Math.max(1, Math.floor(cores / workers)) };
}

/** The line a command logs at start: where its model passes run. */
export function runtimeSummary(options: Required<RuntimeOptions>, workers = 1): string {
  const threads = `${options.threads} thread${options.threads === 1 ? "" : "s"}`;
  return `model passes on ONNX Runtime, device ${options.device}, ${workers > 1 ? `${workers} workers x ${threads} each` : threads}`;
}

/** ONNX Runtime names the failing node as `Node (name)`, `node (name)` or `Name:'name'`. */
const NODE_IN_MESSAGE = /[Nn]ode \(([^)]+)\)|Name:'([^']+)'/;

function failedNode(message: string): string | undefined {
  const m = NODE_IN_MESSAGE.exec(message);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** A compiled graph and what its errors are reported under. */
export class GraphSession {
  constructor(
    readonly architecture: string,
    readonly graph: string,
    readonly session: ort.InferenceSession,
  ) {}

  static async create(builder: GraphBuilder, options: RuntimeOptions = {}): Promise<GraphSession> {
    const device = options.device ?? deviceFromEnv();
    const providers = executionProviders(device);
    const bytes = builder.toBytes();
    try {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: providers,
        intraOpNumThreads: options.threads ?? os.availableParallelism(),
        // The graphs are chains of large operators: parallelism within them, not between them.
        interOpNumThreads: 1,
        executionMode: "sequential",
        graphOptimizationLevel: "all",
        // Without memory patterns a run takes its tensors from the arena's free chunks; with them,
        // a second run of a shape takes one new block as large as the first run's whole peak, and
        // the arena holds both: gpt2-tiny's fit peaked at 1,558 MiB with patterns, 880 without.
        enableMemPattern: false,
        // Idle operator threads sleep instead of spinning: on a busy machine (the server's other
        // workers, the database, other jobs) spinning threads took a small model's capture pass
        // from 8 to 24-40 ms (demo model, 48 tokens, 2 threads, load average 6).
        extra: { session: { intra_op: { allow_spinning: "0" } } },
      });
      return new GraphSession(builder.architecture, builder.graph, session);
    } catch (err) {
      const message = (err as Error).message;
      const node = failedNode(message);
      if (!node && device !== "cpu") {
        throw new Error(
          `device ${device}: ONNX Runtime could not start its ${device} provider (${message}); check the driver and CUDA 12 / cuDNN 9 libraries, or use --device cpu`,
          { cause: err },
        );
      }
      throw new GraphBuildError(builder.architecture, builder.graph, node, `ONNX Runtime rejected the graph: ${message}`, { cause: err });
    }
  }

  async run(feeds: Record<string, ort.Tensor>, fetches: readonly string[]): Promise<Record<string, ort.Tensor>> {
    try {
      return await this.session.run(feeds, [...fetches]);
    } catch (err) {
      const message = (err as Error).message;
      throw new GraphBuildError(this.architecture, this.graph, failedNode(message), `run failed: ${message}`, { cause: err });
    }
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** The sessions of one model, one per graph variant, each built and compiled once. */
export class SessionCache<Variant extends string> {
  private readonly sessions = new Map<Variant, Promise<GraphSession>>();

  constructor(
    private readonly build: (variant: Variant) => GraphBuilder,
    private readonly options: RuntimeOptions = {},
  ) {}

  get(variant: Variant): Promise<GraphSession> {
    let session = this.sessions.get(variant);
    if (!session) {
      session = GraphSession.create(this.build(variant), this.options);
      // A failed build is not cached: the error reaches this caller, and the next one retries.
      session.catch(() => this.sessions.delete(variant));
      this.sessions.set(variant, session);
    }
    return session;
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(async (s) => (await s).release()));
  }
}
