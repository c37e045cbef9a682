/** The `index` argument every query field takes: which served index answers. */
export const INDEX_ARGUMENT = {
  nullable: true,
  description: "Name of the served index that answers (see `indexes`); the server's first index when absent.",
} as const;
