import { Arg, Args, Ctx, FieldResolver, ID, Int, Query, Resolver, Root, UseMiddleware } from "type-graphql";
import { listOf } from "./costs.js";
import { SequenceConnection, SequencesArgs, TrainingSequence } from "./sequence.js";
import type { RequestContext } from "../server/context.js";
import { DEFAULT_PAGE_SIZE } from "../server/sequence-service.js";
import { INDEX_ARGUMENT } from "./index-arg.js";
import { mapErrors } from "./map-errors.js";

@Resolver(() => TrainingSequence)
@UseMiddleware(mapErrors)
export class SequenceResolver {
  @Query(() => TrainingSequence, { nullable: true, description: "A training sequence by id; null when there is none." })
  sequence(
    @Arg("id", () => ID) id: string,
    @Arg("index", () => String, INDEX_ARGUMENT) index: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<TrainingSequence | null> {
    return ctx.index(index).sequences.byExternalId(id);
  }

  @Query(() => SequenceConnection, { complexity: listOf("first", DEFAULT_PAGE_SIZE), description: "Training sequences in corpus order." })
  async sequences(@Args(() => SequencesArgs) args: SequencesArgs, @Ctx() ctx: RequestContext): Promise<SequenceConnection> {
    return { ...(await ctx.index(args.index).sequences.page(args)), search: args.search };
  }

  @FieldResolver(() => [Int], { description: "Token ids of the sequence." })
  tokens(@Root() sequence: TrainingSequence, @Ctx() ctx: RequestContext): Promise<number[]> {
    const index = ctx.index(sequence.index);
    return index.sequences.tokenIds(index.tokenLoader, sequence.ordinal);
  }

  @FieldResolver(() => [String], { description: "Decoded text of each token." })
  async tokenTexts(@Root() sequence: TrainingSequence, @Ctx() ctx: RequestContext): Promise<string[]> {
    const index = ctx.index(sequence.index);
    return index.sequences.tokenTexts(await index.sequences.tokenIds(index.tokenLoader, sequence.ordinal));
  }
}

@Resolver(() => SequenceConnection)
@UseMiddleware(mapErrors)
export class SequenceConnectionResolver {
  @FieldResolver(() => Int, { description: "Sequences matching the search (all pages)." })
  totalCount(@Root() connection: SequenceConnection, @Ctx() ctx: RequestContext): Promise<number> {
    return ctx.index(connection.index).sequences.count(connection.search);
  }
}
