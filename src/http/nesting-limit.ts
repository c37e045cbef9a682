/**
 * Refuses a GraphQL request nested deeper than graphql-js can parse. Its parser and validation
 * recurse once per level of `{ }`, `[ ]` and `( )`: a few thousand levels overflow the stack, and
 * the client got "Maximum call stack size exceeded" as a parse error. The lexer below is iterative,
 * so it measures the nesting of any text safely; the field-depth limit (limits.ts) runs later, on
 * the parsed document.
 */
import type { RequestHandler } from "express";
import { GraphQLError, Lexer, Source, TokenKind } from "graphql";
import { sendError } from "./middleware.js";

/** Far above any useful query (fields may nest at most `maxDepth`, 15 by default), far below a stack overflow. */
export const MAX_BRACKET_NESTING = 100;

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/** Whether the text nests brackets more than `limit` deep; text the lexer refuses is left to the parser to report. */
export function nestsDeeperThan(text: string, limit: number): boolean {
  const lexer = new Lexer(new Source(text));
  let depth = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (OPENING.has(token.kind) && ++depth > limit) return true;
      if (CLOSING.has(token.kind)) depth--;
    }
  } catch (err) {
    if (err instanceof GraphQLError) return false;
    throw err;
  }
  return false;
}

/** Middleware before Apollo: answers QUERY_TOO_DEEP for a query (POST body or GET parameter) nested too deep to parse. */
export function refuseDeepNesting(limit = MAX_BRACKET_NESTING): RequestHandler {
  return (req, res, next) => {
    const query: unknown = req.method === "GET" ? req.query.query : (req.body as { query?: unknown } | undefined)?.query;
    if (typeof query === "string" && nestsDeeperThan(query, limit)) {
      return sendError(
        res,
        "QUERY_TOO_DEEP",
        `the query nests brackets ({ }, [ ], ( )) more than ${limit} deep; fields may nest at most a few levels (see the API's limits)`,
      );
    }
    next();
  };
}
