import { ArgsType, Field, Float, Int, ObjectType } from "type-graphql";
import type { QueryInfo as EngineQueryInfo } from "../engine/types.js";
import type { QueryArgs } from "../engine/query-validation.js";
import { INDEX_ARGUMENT } from "./index-arg.js";

/** A query as text or token ids, whichever index answers it. */
@ArgsType()
export class QueryFields implements QueryArgs {
  @Field(() => String, { nullable: true, description: "Text before the completion; conditions it but is not scored." })
  prompt?: string | null;

  @Field(() => String, { nullable: true, description: "The text whose loss is explained. Required, as text or as completionTokens." })
  completion?: string | null;

  @Field(() => [Int], { nullable: true, description: "The prompt as token ids (instead of prompt)." })
  promptTokens?: number[] | null;

  @Field(() => [Int], { nullable: true, description: "The completion as token ids (instead of completion)." })
  completionTokens?: number[] | null;

  @Field(() => [Int], { nullable: true, description: "Restrict scores to these transformer blocks (all blocks of the index when absent)." })
  layers?: number[] | null;

  @Field(() => [Int], { nullable: true, description: "0-based positions within the completion whose loss is measured (all when absent)." })
  completionPositions?: number[] | null;
}

/** A query asked of one index: `influence`, `influenceDistribution` and `scoreSequences` take it. */
@ArgsType()
export class QueryInputArgs extends QueryFields {
  @Field(() => String, INDEX_ARGUMENT)
  index?: string | null;
}

@ObjectType({ description: "The query as the model saw it." })
export class QueryInfo implements EngineQueryInfo {
  @Field(() => [Int])
  promptTokens!: number[];

  @Field(() => [Int])
  completionTokens!: number[];

  @Field(() => [String], { description: "Decoded text of each prompt and completion token, in order." })
  tokenTexts!: string[];

  @Field(() => Float, { description: "Summed negative log-likelihood of the measured completion tokens." })
  loss!: number;
}
