import "reflect-metadata";
import type { GraphQLSchema } from "graphql";
import { buildSchemaSync } from "type-graphql";
import { resolvers } from "./resolvers.js";

let schema: GraphQLSchema | undefined;

/** The GraphQL schema, built once from the resolver classes' decorators. */
export function influenceSchema(): GraphQLSchema {
  schema ??= buildSchemaSync({ resolvers: [...resolvers] });
  return schema;
}
