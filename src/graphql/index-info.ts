import { GraphQLDateTimeISO, GraphQLSafeInt } from "graphql-scalars";
import { Field, Float, Int, ObjectType } from "type-graphql";
import type { IndexInfo as EngineIndexInfo } from "../engine/types.js";

type Model = EngineIndexInfo["model"];
type Corpus = EngineIndexInfo["corpus"];
type Module = EngineIndexInfo["modules"][number];
type Build = EngineIndexInfo["build"];

@ObjectType()
export class ModelInfo implements Model {
  @Field(() => String)
  path!: string;

  @Field(() => String)
  fingerprint!: string;

  @Field(() => String)
  architecture!: string;

  @Field(() => Int, { description: "Transformer blocks." })
  layers!: number;

  @Field(() => Int)
  embedding!: number;

  @Field(() => Int)
  vocabSize!: number;

  @Field(() => Int, { description: "Most tokens of prompt plus completion." })
  contextLength!: number;
}

@ObjectType()
export class CorpusInfo implements Corpus {
  @Field(() => String)
  name!: string;

  @Field(() => String)
  path!: string;

  @Field(() => String)
  fingerprint!: string;

  @Field(() => GraphQLSafeInt, { description: "Indexed training sequences." })
  sequences!: number;

  @Field(() => GraphQLSafeInt)
  tokens!: number;
}

@ObjectType({ description: "Projected dimensions per MLP matrix (kOut x kIn) and in total." })
export class Dims {
  @Field(() => Int)
  kOut!: number;

  @Field(() => Int)
  kIn!: number;

  @Field(() => Int)
  total!: number;
}

@ObjectType({ description: "One MLP matrix whose influence the index covers." })
export class ModuleInfo implements Module {
  @Field(() => String)
  name!: string;

  @Field(() => Int)
  layer!: number;

  @Field(() => Float, { description: "Damping added to the EK-FAC eigenvalues of this module." })
  damping!: number;

  @Field(() => Int, { description: "Start of the module's block in the projected vector." })
  offset!: number;

  @Field(() => Int)
  size!: number;
}

@ObjectType({ description: "The `influence build` run that wrote the index." })
export class BuildInfo implements Omit<Build, "startedAt" | "finishedAt"> {
  @Field(() => Int)
  id!: number;

  @Field(() => GraphQLDateTimeISO)
  startedAt!: string | Date;

  @Field(() => GraphQLDateTimeISO)
  finishedAt!: string | Date;

  @Field(() => Float)
  seconds!: number;

  @Field(() => GraphQLSafeInt)
  projectionSeed!: number;
}

@ObjectType({ description: "A served index: what it was built from and how." })
export class IndexInfo {
  @Field(() => String, { description: "What queries call it in their `index` argument." })
  name!: string;

  @Field(() => ModelInfo)
  model!: ModelInfo;

  @Field(() => CorpusInfo)
  corpus!: CorpusInfo;

  @Field(() => Dims)
  dims!: Dims;

  @Field(() => [Int])
  layers!: number[];

  @Field(() => [ModuleInfo])
  modules!: ModuleInfo[];

  @Field(() => String, { description: "Fisher estimate the factors were fitted with." })
  fisher!: string;

  @Field(() => BuildInfo)
  build!: BuildInfo;
}

@ObjectType({ description: "A transformer block and its MLP matrices." })
export class LayerInfo {
  @Field(() => Int)
  layer!: number;

  @Field(() => [ModuleInfo])
  modules!: ModuleInfo[];
}
