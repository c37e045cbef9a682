import { Arg, Ctx, Int, Query, Resolver, UseMiddleware } from "type-graphql";
import type { RequestContext } from "../server/context.js";
import { DistributedBuildInfo } from "./builds.js";
import { INDEX_ARGUMENT } from "./index-arg.js";
import { mapErrors } from "./map-errors.js";

@Resolver()
@UseMiddleware(mapErrors)
export class BuildsResolver {
  @Query(() => [DistributedBuildInfo], {
    description: "Distributed builds in the database of an index (the default's unless named), newest first (or the one asked for): phase, jobs and workers.",
  })
  builds(
    @Arg("id", () => Int, { nullable: true, description: "One build." }) id: number | null,
    @Arg("index", () => String, INDEX_ARGUMENT) index: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<DistributedBuildInfo[]> {
    return ctx.index(index).info.builds(id ?? undefined);
  }
}
