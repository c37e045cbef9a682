import type { MiddlewareFn } from "type-graphql";
import type { RequestContext } from "../server/context.js";
import { toServerError } from "../server/errors.js";

/**
 * Gives every error leaving a resolver its client-facing code (and HTTP status). Failures of our
 * own are logged with their stack, which the response never carries.
 */
export const mapErrors: MiddlewareFn<RequestContext> = async ({ context }, next) => {
  try {
    return await next();
  } catch (err) {
    const error = toServerError(err);
    if (error.code === "INTERNAL_SERVER_ERROR") {
      const cause = error.cause instanceof Error ? error.cause : error;
      context.logger.error(`internal error: ${cause.stack ?? cause.message}`);
    }
    throw error;
  }
};
