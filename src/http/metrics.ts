import type { ApolloServerPlugin } from "@apollo/server";
import { type DocumentNode, Kind, type SelectionSetNode } from "graphql";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { WorkerPoolMetrics } from "../workers/worker-pool.js";
import type { MemoryRecord } from "../model/memory-estimate.js";
import { peakResidentBytes } from "../util/memory.js";

/** Whatever reports the engine's worker pool (the pool itself). */
export interface PoolMetricsSource {
  metrics(): WorkerPoolMetrics;
}

/** Prometheus metrics of one server: its own registry, so that several servers in a process do not collide. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: "influence_graphql_requests_total",
    help: "GraphQL requests by operation (root fields) and outcome (success or error code).",
    labelNames: ["operation", "outcome"] as const,
    registers: [this.registry],
  });
  readonly #duration = new Histogram({
    name: "influence_graphql_request_duration_seconds",
    help: "GraphQL request latency by operation (root fields) and outcome.",
    labelNames: ["operation", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  /** `pools`: each served index's engine pool, labelled with the index's name. */
  constructor(pools: ReadonlyArray<{ index: string; pool: PoolMetricsSource }> = [], memory?: Omit<MemoryRecord, "peakBytes">) {
    collectDefaultMetrics({ register: this.registry });
    if (pools.length > 0) this.#poolGauges(pools);
    this.#memoryGauges(memory);
  }

  #memoryGauges(memory?: Omit<MemoryRecord, "peakBytes">): void {
    new Gauge({
      name: "influence_memory_peak_bytes",
      help: "Most resident memory the process (engine workers included) has held since it started.",
      registers: [this.registry],
      collect() {
        this.set(peakResidentBytes());
      },
    });
    if (!memory) return;
    const estimate = new Gauge({ name: "influence_memory_estimate_bytes", help: "The peak memory estimated at start.", registers: [this.registry] });
    estimate.set(memory.estimateBytes);
    const budget = new Gauge({
      name: "influence_memory_budget_bytes",
      help: "The memory budget (--memory, or the machine's memory).",
      registers: [this.registry],
    });
    budget.set(memory.budgetBytes);
  }

  /** Counts and times every GraphQL request, refused ones included. */
  plugin(): ApolloServerPlugin {
    const requests = this.#requests;
    const duration = this.#duration;
    return {
      async requestDidStart() {
        const stopTimer = duration.startTimer();
        return {
          async willSendResponse({ document, operation, errors }) {
            const labels = {
              operation: operation && document ? rootFields(operation.selectionSet, document) : "unknown",
              outcome: errors?.length ? String(errors[0].extensions.code ?? "INTERNAL_SERVER_ERROR") : "success",
            };
            requests.inc(labels);
            stopTimer(labels);
          },
        };
      },
    };
  }

  #poolGauges(pools: ReadonlyArray<{ index: string; pool: PoolMetricsSource }>): void {
    const gauge = (name: string, help: string, read: (m: WorkerPoolMetrics) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["index"] as const,
        registers: [this.registry],
        collect() {
          for (const { index, pool } of pools) this.set({ index }, read(pool.metrics()));
        },
      });
    gauge("influence_engine_queue_depth", "Engine requests waiting for a free worker.", (m) => m.queued);
    gauge("influence_engine_queue_limit", "Engine requests allowed to wait; more are refused with SERVER_BUSY.", (m) => m.maxQueue);
    gauge("influence_engine_busy_workers", "Engine workers running a request.", (m) => m.busy);
    gauge("influence_engine_workers", "Engine workers alive.", (m) => m.workers);
  }
}

/**
 * Names of the fields an operation selects at its root (through fragments, aliases ignored), sorted:
 * a label with few values, unlike client-chosen operation names.
 */
function rootFields(root: SelectionSetNode, document: DocumentNode): string {
  const names = new Set<string>();
  // Only called for validated operations: fragments exist and do not cycle.
  const visit = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) names.add(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet);
      else {
        const fragment = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value);
        if (fragment?.kind === Kind.FRAGMENT_DEFINITION) visit(fragment.selectionSet);
      }
    }
  };
  visit(root);
  return [...names].sort().join("+") || "none";
}
