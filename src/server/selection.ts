import { type GraphQLResolveInfo, GraphQLIncludeDirective, GraphQLSkipDirective, getDirectiveValues, Kind, type SelectionSetNode } from "graphql";

/**
 * True when the field being resolved selects `path` below it (e.g. ["hits", "tokenScores"]), under
 * any alias, through fragments, and unless @skip/@include leave it out. Lets a resolver skip work
 * the client did not ask for.
 */
export function selectsPath(info: GraphQLResolveInfo, path: readonly string[]): boolean {
  return info.fieldNodes.some((node) => node.selectionSet !== undefined && setSelects(info, node.selectionSet, path));
}

function setSelects(info: GraphQLResolveInfo, set: SelectionSetNode, path: readonly string[]): boolean {
  const [name, ...rest] = path;
  return set.selections.some((selection) => {
    if (!included(info, selection)) return false;
    switch (selection.kind) {
      case Kind.FIELD:
        if (selection.name.value !== name) return false;
        return rest.length === 0 || (selection.selectionSet !== undefined && setSelects(info, selection.selectionSet, rest));
      case Kind.INLINE_FRAGMENT:
        return setSelects(info, selection.selectionSet, path);
      case Kind.FRAGMENT_SPREAD: {
        const fragment = info.fragments[selection.name.value];
        return fragment !== undefined && setSelects(info, fragment.selectionSet, path);
      }
    }
  });
}

function included(info: GraphQLResolveInfo, node: Parameters<typeof getDirectiveValues>[1]): boolean {
  if (getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;
}
