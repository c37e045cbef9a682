import pg from "pg";

const INT8 = 20;
const INT8_ARRAY = 1016;
const TEXT_ARRAY = 1009;

type TextParser = (value: string) => unknown;
/** node-postgres' own parsers; its typings only name scalar type ids, hence the wider signature. */
const builtinParser = pg.types.getTypeParser as (oid: number, format: "text" | "binary") => TextParser;
const parseTextArray = builtinParser(TEXT_ARRAY, "text") as (value: string) => (string | null)[];

/**
 * Result parsing shared by both backends. node-postgres returns int8 as a string by default (it may
 * exceed 2^53); here int8 (ids, count(*), sums) becomes a number, as every int8 value in this schema
 * is a count or identifier far below 2^53. Everything else keeps node-postgres' defaults: int4[] as
 * number[], text[] as string[], jsonb parsed, timestamptz as Date, numeric as string (unused here).
 */
export const typeParsers = {
  getTypeParser(oid: number, format: "text" | "binary" = "text"): TextParser {
    if (oid === INT8) return Number;
    if (oid === INT8_ARRAY) return (value) => parseTextArray(value).map((v) => (v === null ? null : Number(v)));
    return builtinParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** Set on both backends so that SQL-side date arithmetic and text output agree. */
export const SESSION_TIME_ZONE = "UTC";
