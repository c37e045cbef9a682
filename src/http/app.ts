import "reflect-metadata";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { expressMiddleware } from "@as-integrations/express5";
import express, { type RequestHandler } from "express";
import type { Database } from "../db/index.js";
import type { InfluenceEngine } from "../engine/types.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { type RequestContext, requestContext, type Services } from "../server/context.js";
import { CorpusRef } from "../server/corpus.js";
import { guardDatabase } from "../server/guarded-database.js";
import { healthCheck } from "./health.js";
import type { MemoryRecord } from "../model/memory-estimate.js";
import { cors, errorResponses, requireApiKey } from "./middleware.js";
import { IndexRegistry, type ServedIndex } from "../server/index-registry.js";
import { IndexService } from "../server/index-service.js";
import { InfluenceService } from "../server/influence-service.js";
import { DEFAULT_MAX_COMPLEXITY, DEFAULT_MAX_DEPTH, queryLimitsPlugin } from "./operation-limits.js";
import { consoleLogger, type ServerLogger } from "../server/logger.js";
import { type PoolMetricsSource, ServerMetrics } from "./metrics.js";
import { refuseDeepNesting } from "./nesting-limit.js";
import { influenceSchema } from "../graphql/schema.js";
import { SequenceService } from "../server/sequence-service.js";
import { staticSite } from "./static-files.js";

export const DEFAULT_MAX_BODY_BYTES = 100_000;

/** One index to serve: its engine and the database holding its corpus. */
export interface IndexBackend {
  /** What queries call it (index-names.ts says what a name may be); unique in a server. */
  name: string;
  engine: InfluenceEngine;
  db: Database;
  /** The model's tokenizer: encodes text queries and `containsToken`, decodes token texts. */
  tokenizer: Tokenizer;
  /** The engine's worker pool, for /healthz and /metrics. */
  enginePool?: PoolMetricsSource;
}

export interface ServerOptions {
  /** The indexes to serve; the first is the default of queries that name none. */
  indexes: IndexBackend[];
  host?: string;
  /** 0 for any free port. */
  port?: number;
  /** When set, /graphql and /metrics require it (Authorization: Bearer <key>, or x-api-key). */
  apiKey?: string;
  /** Origins allowed to call the API from a browser ("*" for any); no CORS headers when empty. */
  corsOrigins?: readonly string[];
  maxBodyBytes?: number;
  /** Deepest field nesting of an operation. */
  maxDepth?: number;
  /** Highest cost of an operation (see graphql/costs.ts). */
  maxComplexity?: number;
  /** Folder of the web UI (index.html, playground/index.html), served at `/`. */
  webRoot?: string;
  /** Longest wait for running requests on close before their connections are cut. */
  closeGraceMs?: number;
  logger?: ServerLogger;
  /** The server's memory estimate, reported beside its peak on /healthz and /metrics. */
  memory?: Omit<MemoryRecord, "peakBytes">;
}

export interface RunningServer {
  /** http://host:port */
  url: string;
  graphqlUrl: string;
  /** Stops accepting requests, lets running ones finish and their queries be logged, closes. The engine and database stay open (they are the caller's). */
  close(): Promise<void>;
}

/**
 * The HTTP server: GraphQL at /graphql, /healthz, /metrics (Prometheus), and the web UI's files
 * when `webRoot` is given. Termination signals are the caller's to handle (call `close`).
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { host = "127.0.0.1", port = 4000, maxBodyBytes = DEFAULT_MAX_BODY_BYTES, logger = consoleLogger } = options;
  const indexes = new IndexRegistry(options.indexes.map((backend) => servedIndex(backend, logger)));
  const services: Services = { indexes, logger };
  const pools = options.indexes.flatMap(({ name, enginePool }) => (enginePool ? [{ index: name, pool: enginePool }] : []));
  const metrics = new ServerMetrics(pools, options.memory);

  const app = express();
  const httpServer = http.createServer(app);
  const apollo = new ApolloServer<RequestContext>({
    schema: influenceSchema(),
    // The offline playground needs introspection; Apollo turns it off under NODE_ENV=production.
    introspection: true,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    logger: { debug: () => {}, info: () => {}, warn: (message) => logger.warn(String(message)), error: (message) => logger.error(String(message)) },
    plugins: [
      // The default landing page loads Apollo Sandbox from a CDN: blank offline.
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: options.closeGraceMs ?? 10_000 }),
      queryLimitsPlugin({ maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH, maxComplexity: options.maxComplexity ?? DEFAULT_MAX_COMPLEXITY }),
      metrics.plugin(),
      // The schema sets no cache hints; the default plugin would still wrap every field's resolver.
      ApolloServerPluginCacheControlDisabled(),
    ],
  });
  await apollo.start();

  app.disable("x-powered-by");
  // GraphQL answers are POSTed (never revalidated) and carry their elapsed time, so an ETag never
  // matches; hashing each one cost ~0.5 ms. Static files keep theirs (serve-static sets its own).
  app.set("etag", false);
  if (options.corsOrigins?.length) app.use(cors(options.corsOrigins));
  app.get(
    "/healthz",
    healthCheck(
      indexes.all.map((index, i) => ({ name: index.name, db: index.db, pool: options.indexes[i].enginePool })),
      options.memory,
    ),
  );
  const auth: RequestHandler = options.apiKey ? requireApiKey(options.apiKey) : (_req, _res, next) => next();
  app.get("/metrics", auth, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use(
    "/graphql",
    auth,
    express.json({ limit: maxBodyBytes }),
    refuseDeepNesting(),
    expressMiddleware(apollo, { context: async () => requestContext(services) }),
  );
  if (options.webRoot) app.use(staticSite(options.webRoot));
  app.use(errorResponses(logger, maxBodyBytes));

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(port, host, resolve);
    });
  } catch (err) {
    await apollo.stop();
    throw err;
  }
  const address = httpServer.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  return {
    url,
    graphqlUrl: `${url}/graphql`,
    close: async () => {
      await apollo.stop();
      // The last answers' log entries, before the caller closes the databases.
      await Promise.all(indexes.all.map((index) => index.influence.flushLog()));
    },
  };
}

/** An index's services over its engine and database (connection failures reported as DATABASE_UNAVAILABLE). */
function servedIndex({ name, engine, tokenizer, ...backend }: IndexBackend, logger: ServerLogger): ServedIndex {
  const db = guardDatabase(backend.db);
  const corpus = new CorpusRef(db, engine.info().corpus);
  const sequences = new SequenceService(name, db, corpus, tokenizer);
  return {
    name,
    influence: new InfluenceService({ name, engine, db, tokenizer, corpus, sequences, logger }),
    sequences,
    info: new IndexService(name, engine, db),
    db,
  };
}
