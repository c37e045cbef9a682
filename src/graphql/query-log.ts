import { GraphQLDateTimeISO, GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, ObjectType } from "type-graphql";
import type { QueryLogEntry } from "../db/index.js";

@ObjectType({ description: "A query the server answered or refused, from the query log." })
export class LoggedQuery implements Omit<QueryLogEntry, "id"> {
  @Field(() => ID)
  id!: number;

  @Field(() => GraphQLDateTimeISO)
  createdAt!: Date;

  @Field(() => GraphQLJSONObject, { description: "The operation and the arguments it was given." })
  parameters!: Record<string, unknown>;

  @Field(() => GraphQLJSONObject, { description: "Milliseconds per step; serviceMs is the server's time from arguments to answer." })
  timings!: Record<string, number>;

  @Field(() => [String], { description: "Ids of the most influential sequences, best first." })
  topHitIds!: string[];

  @Field(() => String, { nullable: true, description: "Error code and message when the query failed." })
  error!: string | null;
}
