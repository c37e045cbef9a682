/** Plain-text tables for the commands' human-readable output: a header row and aligned columns. */

export interface Column {
  header: string;
  /** Numbers read best right-aligned; text left-aligned. */
  align?: "left" | "right";
}

/** The rows under a header, each column as wide as its widest cell, separated by two spaces. */
export function formatTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => (columns[i].align === "right" ? cell.padStart(widths[i]) : i === cells.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ");
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join("\n");
}

/** A score as printed in tables: 3 significant digits in exponent form, e.g. 8.865e+3. */
export const formatScore = (score: number): string => score.toExponential(3);
