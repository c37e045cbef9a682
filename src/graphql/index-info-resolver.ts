import { Arg, Ctx, Query, Resolver, UseMiddleware } from "type-graphql";
import { IndexInfo, LayerInfo } from "./index-info.js";
import type { RequestContext } from "../server/context.js";
import { INDEX_ARGUMENT } from "./index-arg.js";
import { mapErrors } from "./map-errors.js";

@Resolver()
@UseMiddleware(mapErrors)
export class IndexResolver {
  @Query(() => IndexInfo, { description: "The model, corpus and build of a served index." })
  index(@Arg("index", () => String, INDEX_ARGUMENT) index: string | null, @Ctx() ctx: RequestContext): IndexInfo {
    return ctx.index(index).info.info();
  }

  @Query(() => [IndexInfo], { description: "Every served index, the default (first) one first." })
  indexes(@Ctx() ctx: RequestContext): IndexInfo[] {
    return ctx.indexes.all.map((index) => index.info.info());
  }

  @Query(() => [LayerInfo], { description: "Transformer blocks covered by an index, with their MLP matrices and damping." })
  layers(@Arg("index", () => String, INDEX_ARGUMENT) index: string | null, @Ctx() ctx: RequestContext): LayerInfo[] {
    return ctx.index(index).info.layers();
  }
}
