import { InputError } from "../util/errors.js";

/** What an index may be called: it travels in GraphQL arguments, URLs and metric labels. */
const INDEX_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const INDEX_NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit";

export function checkIndexName(name: string, where: string): string {
  if (!INDEX_NAME.test(name)) throw new InputError(`${where}: index name ${JSON.stringify(name)} is not ${INDEX_NAME_RULE}`);
  return name;
}

/** Names of the indexes one server serves: valid, at least one, no two alike. */
export function checkIndexNames(names: readonly string[]): void {
  if (names.length === 0) throw new InputError("no index to serve");
  const seen = new Set<string>();
  for (const name of names) {
    checkIndexName(name, "index");
    if (seen.has(name)) throw new InputError(`two indexes are named ${JSON.stringify(name)}: give each its own name (--index NAME=DIR)`);
    seen.add(name);
  }
}
