import type DataLoader from "dataloader";
import type { Sequence } from "../db/index.js";
import type { IndexRegistry, ServedIndex } from "./index-registry.js";
import type { OfIndex } from "./of-index.js";
import type { ServerLogger } from "./logger.js";

/** The services, shared by all requests. */
export interface Services {
  indexes: IndexRegistry;
  logger: ServerLogger;
}

/** A served index as one request sees it: its services and the request's loaders of its sequences and their token ids. */
export interface IndexContext extends ServedIndex {
  sequenceLoader: DataLoader<number, OfIndex<Sequence> | null>;
  tokenLoader: DataLoader<number, number[] | null>;
}

/** What resolvers get as their context. */
export interface RequestContext extends Services {
  /** The index called `name` (the default when absent), with this request's loaders, made on first use. */
  index(name?: string | null): IndexContext;
}

export function requestContext(services: Services): RequestContext {
  const contexts = new Map<string, IndexContext>();
  return {
    ...services,
    index(name) {
      const served = services.indexes.get(name);
      let context = contexts.get(served.name);
      if (!context) {
        context = { ...served, sequenceLoader: served.sequences.createLoader(), tokenLoader: served.sequences.createTokenLoader() };
        contexts.set(served.name, context);
      }
      return context;
    },
  };
}
