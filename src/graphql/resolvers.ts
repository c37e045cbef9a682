import { CompareInfluenceResolver } from "./compare-influence-resolver.js";
import { BuildsResolver } from "./builds-resolver.js";
import { IndexResolver } from "./index-info-resolver.js";
import { InfluenceResolver } from "./influence-resolver.js";
import { QueryLogResolver } from "./query-log-resolver.js";
import { ScoreSequencesResolver } from "./score-sequences-resolver.js";
import { SequenceConnectionResolver, SequenceResolver } from "./sequence-resolver.js";

export const resolvers = [
  InfluenceResolver,
  SequenceResolver,
  SequenceConnectionResolver,
  IndexResolver,
  QueryLogResolver,
  ScoreSequencesResolver,
  CompareInfluenceResolver,
  BuildsResolver,
] as const;
