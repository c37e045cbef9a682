import { createHash, timingSafeEqual } from "node:crypto";
import type { ErrorRequestHandler, RequestHandler, Response } from "express";
import { type ErrorCode, httpStatusOf } from "./errors.js";
import type { ServerLogger } from "./logger.js";

/** An error answered outside GraphQL execution, shaped like a GraphQL error response so clients show it the same way. */
export function sendError(res: Response, code: ErrorCode, message: string, status = httpStatusOf(code) ?? 500): void {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/** Requires the key as `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function requireApiKey(apiKey: string): RequestHandler {
  const expected = digest(apiKey);
  return (req, res, next) => {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1];
    const given = bearer ?? req.get("x-api-key");
    // Digests have equal lengths, as timingSafeEqual requires, whatever the client sent.
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return next();
    res.set("WWW-Authenticate", 'Bearer realm="influence-graph"');
    sendError(
      res,
      "UNAUTHENTICATED",
      given === undefined ? "an API key is required: send Authorization: Bearer <key> or x-api-key: <key>" : "the API key is not valid",
    );
  };
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * CORS for the listed origins only ("*" for any): other origins get no CORS headers, so browsers
 * keep their pages from reading the API's responses. Answers preflight requests itself.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins.map((o) => o.replace(/\/+$/, "")));
  return (req, res, next) => {
    res.vary("Origin");
    const origin = req.get("origin");
    if (origin === undefined || !(allowed.has("*") || allowed.has(origin))) return next();
    res.set("Access-Control-Allow-Origin", allowed.has("*") ? "*" : origin);
    if (req.method !== "OPTIONS") return next();
    res.set({
      "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
      "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Api-Key, Apollo-Require-Preflight",
      "Access-Control-Max-Age": "600",
    });
    res.status(204).end();
  };
}

/** Errors of the body parser as JSON (413 for an oversized body); anything else is ours and logged. */
export function errorResponses(logger: ServerLogger, maxBodyBytes: number): ErrorRequestHandler {
  return (err: { type?: string; status?: number; message?: string; stack?: string }, _req, res, next) => {
    if (res.headersSent) return next(err);
    if (err.type === "entity.too.large") return sendError(res, "PAYLOAD_TOO_LARGE", `the request body is larger than the limit of ${maxBodyBytes} bytes`);
    if (err.status !== undefined && err.status >= 400 && err.status < 500) return sendError(res, "BAD_USER_INPUT", `bad request: ${err.message}`, err.status);
    logger.error(`internal error: ${err.stack ?? err.message}`);
    sendError(res, "INTERNAL_SERVER_ERROR", "internal server error");
  };
}
