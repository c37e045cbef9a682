import { Arg, Ctx, Int, Query, Resolver, UseMiddleware } from "type-graphql";
import { MAX_RECENT_QUERIES } from "../db/index.js";
import { listOf } from "./costs.js";
import { LoggedQuery } from "./query-log.js";
import type { RequestContext } from "../server/context.js";
import { DEFAULT_RECENT_QUERIES } from "../server/influence-service.js";
import { INDEX_ARGUMENT } from "./index-arg.js";
import { mapErrors } from "./map-errors.js";

@Resolver()
@UseMiddleware(mapErrors)
export class QueryLogResolver {
  @Query(() => [LoggedQuery], {
    complexity: listOf("limit", DEFAULT_RECENT_QUERIES),
    description: "The latest queries in an index's query log (its database's), newest first.",
  })
  recentQueries(
    @Arg("limit", () => Int, { nullable: true, defaultValue: DEFAULT_RECENT_QUERIES, description: `1 to ${MAX_RECENT_QUERIES}.` }) limit: number | null,
    @Arg("index", () => String, INDEX_ARGUMENT) index: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<LoggedQuery[]> {
    return ctx.index(index).influence.recentQueries(limit);
  }
}
