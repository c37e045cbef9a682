import type { ApolloServerPlugin } from "@apollo/server";
import { type FragmentDefinitionNode, type GraphQLSchema, Kind, type OperationDefinitionNode, type SelectionSetNode } from "graphql";
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from "graphql-query-complexity";
import { ServerError } from "../server/errors.js";

/** Deep enough for the standard introspection query (15, GraphiQL's); the schema's own types nest at most 4 deep. */
export const DEFAULT_MAX_DEPTH = 15;
/** Admits one influence search of 1000 hits with their sequences, or four searches of a few hits. */
export const DEFAULT_MAX_COMPLEXITY = 10_000;

export interface QueryLimits {
  maxDepth: number;
  maxComplexity: number;
}

/**
 * Refuses an operation nested deeper than `maxDepth` fields (introspection included) or costing
 * more than `maxComplexity` (see graphql/costs.ts; aliased copies of a field each count), before
 * anything runs.
 */
export function queryLimitsPlugin(limits: QueryLimits): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          if (!operation) return; // unknown operationName: execution reports it
          const fragments = new Map(
            document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
          );
          const depth = selectionDepth(operation.selectionSet, fragments, new Set());
          if (depth > limits.maxDepth) {
            throw new ServerError("QUERY_TOO_DEEP", `the query nests fields ${depth} deep, more than the limit of ${limits.maxDepth}`);
          }
          const cost = operationCost(schema, document, operation, request.variables);
          if (cost > limits.maxComplexity) {
            throw new ServerError(
              "QUERY_TOO_COMPLEX",
              `the query costs ${cost}, more than the limit of ${limits.maxComplexity}: ask for fewer hits or fields, or split it into several requests`,
            );
          }
        },
      };
    },
  };
}

function selectionDepth(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, spreading: Set<string>): number {
  let depth = 0;
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) {
      depth = Math.max(depth, 1 + (selection.selectionSet ? selectionDepth(selection.selectionSet, fragments, spreading) : 0));
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      depth = Math.max(depth, selectionDepth(selection.selectionSet, fragments, spreading));
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      // Validation has refused fragment cycles already; the guard only keeps this function total.
      if (!fragment || spreading.has(name)) continue;
      spreading.add(name);
      depth = Math.max(depth, selectionDepth(fragment.selectionSet, fragments, spreading));
      spreading.delete(name);
    }
  }
  return depth;
}

function operationCost(
  schema: GraphQLSchema,
  document: Parameters<typeof getComplexity>[0]["query"],
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> | undefined,
): number {
  try {
    return getComplexity({
      schema,
      query: document,
      operationName: operation.name?.value,
      variables,
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch (err) {
    if (/number of nodes/.test((err as Error).message)) throw new ServerError("QUERY_TOO_COMPLEX", (err as Error).message);
    // Variables that do not fit the operation: execution refuses them with the precise message.
    return 0;
  }
}
