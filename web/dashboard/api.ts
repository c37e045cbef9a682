import { GRAPHQL_PATH, requestHeaders } from "../shared/request.ts";

/** A failed request, with the server's own words (GraphQL error messages) when it gave any. */
export class ApiError extends Error {}

interface GraphQLBody<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

/** POSTs one operation to /graphql; resolves to `data`, or rejects with an ApiError. */
export async function graphql<T>(query: string, variables: object = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, { method: "POST", headers: requestHeaders(), body: JSON.stringify({ query, variables }) });
  } catch (err) {
    throw new ApiError(`cannot reach the server: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Error statuses (400, 401, 413, 503...) carry GraphQL-shaped JSON too; a proxy's page may not.
  const body = (await response.json().catch(() => undefined)) as GraphQLBody<T> | undefined;
  if (body?.errors?.length) {
    throw new ApiError(body.errors.map((e) => (e.extensions?.code ? `${e.extensions.code}: ${e.message}` : e.message)).join("\n"));
  }
  if (!response.ok || body?.data == null) throw new ApiError(`HTTP ${response.status} ${response.statusText}`.trim());
  return body.data;
}
