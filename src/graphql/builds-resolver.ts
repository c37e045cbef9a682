import { Arg, Ctx, Int, Query, Resolver, UseMiddleware } from "type-graphql";
import type { RequestContext } from "../server/context.js";
import { DistributedBuildInfo } from "./builds.js";
import { mapErrors } from "./map-errors.js";

@Resolver()
@UseMiddleware(mapErrors)
export class BuildsResolver {
  @Query(() => [DistributedBuildInfo], {
    description: "Distributed builds in the server's database, newest first (or the one asked for): phase, jobs and workers.",
  })
  builds(@Arg("id", () => Int, { nullable: true, description: "One build." }) id: number | null, @Ctx() ctx: RequestContext): Promise<DistributedBuildInfo[]> {
    return ctx.index.builds(id ?? undefined);
  }
}
