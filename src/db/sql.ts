/**
 * `search` as a case-insensitive substring pattern for `ILIKE ... ESCAPE '\'`: the user's `%`, `_`
 * and `\` match themselves instead of acting as wildcards or escapes.
 */
export function containsPattern(search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** True for a unique-constraint violation, optionally of the named constraint or index. */
export function isUniqueViolation(err: unknown, constraint?: string): err is Error & { constraint?: string; detail?: string } {
  const e = err as { code?: unknown; constraint?: unknown } | null;
  return e?.code === "23505" && (constraint === undefined || e.constraint === constraint);
}
