import { Ctx, Query, Resolver } from "type-graphql";
import { IndexInfo, LayerInfo } from "./index-info.js";
import type { RequestContext } from "../server/context.js";

@Resolver()
export class IndexResolver {
  @Query(() => IndexInfo, { description: "The model, corpus and build of the index being served." })
  index(@Ctx() ctx: RequestContext): IndexInfo {
    return ctx.index.info();
  }

  @Query(() => [LayerInfo], { description: "Transformer blocks covered by the index, with their MLP matrices and damping." })
  layers(@Ctx() ctx: RequestContext): LayerInfo[] {
    return ctx.index.layers();
  }
}
