import { ArgsType, Field, ID, Int, ObjectType } from "type-graphql";
import { MAX_PAGE_SIZE, type Sequence } from "../db/index.js";
import { DEFAULT_PAGE_SIZE } from "../server/sequence-service.js";
import { INDEX_ARGUMENT } from "./index-arg.js";

@ObjectType({ description: "A training sequence: one window of a corpus document, the unit whose influence is scored." })
export class TrainingSequence implements Omit<Sequence, "corpusId" | "documentId"> {
  @Field(() => ID, { name: "id", description: "The document id, plus #<offset> when the document was split into windows." })
  externalId!: string;

  @Field(() => Int, { description: "Position of the sequence in the corpus." })
  ordinal!: number;

  @Field(() => String, { name: "documentId", description: "Id of the corpus document (its JSONL `id`)." })
  documentExternalId!: string;

  @Field(() => Int, { name: "offset", description: "Position of the sequence's first token in its document." })
  tokenOffset!: number;

  @Field(() => String, { nullable: true, description: "null when the corpus gave token ids only." })
  text!: string | null;

  @Field(() => Int)
  tokenCount!: number;

  /** The index whose corpus holds the sequence, whose tokenizer decodes it (not a field). */
  index!: string;
}

@ArgsType()
export class SequencesArgs {
  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_PAGE_SIZE, description: `Page size, 1 to ${MAX_PAGE_SIZE}.` })
  first?: number | null;

  @Field(() => String, { nullable: true, description: "endCursor of the previous page." })
  after?: string | null;

  @Field(() => String, { nullable: true, description: "Only sequences whose text contains this, case-insensitively (no wildcards)." })
  search?: string | null;

  @Field(() => String, INDEX_ARGUMENT)
  index?: string | null;
}

@ObjectType()
export class SequenceEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => TrainingSequence)
  node!: TrainingSequence;
}

@ObjectType()
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

@ObjectType({ description: "Training sequences in corpus order, a page at a time (Relay connection)." })
export class SequenceConnection {
  @Field(() => [SequenceEdge])
  edges!: SequenceEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  /** The filter of this listing, for totalCount (not a field). */
  search?: string | null;

  /** The index listed, for totalCount (not a field). */
  index!: string;
}
