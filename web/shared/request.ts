/** The server's GraphQL endpoint: the pages are served by the same server. */
export const GRAPHQL_PATH = "/graphql";

/**
 * Headers of every API request: JSON, plus the API key when the page URL carries `?apiKey=`
 * (servers started with --api-key refuse requests without it).
 */
export function requestHeaders(): Record<string, string> {
  const apiKey = new URLSearchParams(window.location.search).get("apiKey");
  return { "content-type": "application/json", ...(apiKey ? { "x-api-key": apiKey } : {}) };
}
