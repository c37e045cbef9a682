import type DataLoader from "dataloader";
import type { Sequence } from "../db/index.js";
import type { IndexService } from "./index-service.js";
import type { InfluenceService } from "./influence-service.js";
import type { ServerLogger } from "./logger.js";
import type { SequenceService } from "./sequence-service.js";

/** The services, shared by all requests. */
export interface Services {
  influence: InfluenceService;
  sequences: SequenceService;
  index: IndexService;
  logger: ServerLogger;
}

/** What resolvers get as their context: the services and this request's loaders. */
export interface RequestContext extends Services {
  sequenceLoader: DataLoader<number, Sequence | null>;
}

export function requestContext(services: Services): RequestContext {
  return { ...services, sequenceLoader: services.sequences.createLoader() };
}
