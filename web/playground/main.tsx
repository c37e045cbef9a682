// Monaco's editor, JSON and GraphQL workers, bundled (GraphiQL would otherwise fetch them from a CDN).
import "graphiql/setup-workers/vite";
import "graphiql/style.css";
import { GraphiQL, type GraphiQLProps } from "graphiql";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { GRAPHQL_PATH, requestHeaders } from "../shared/request.ts";
import { EXAMPLE_QUERY } from "./example-query.ts";

/** POSTs each operation to this server's /graphql; error responses are GraphQL JSON too, shown as they are. */
const fetcher: GraphiQLProps["fetcher"] = async (params, options) => {
  const response = await fetch(GRAPHQL_PATH, {
    method: "POST",
    headers: { ...requestHeaders(), ...options?.headers },
    body: JSON.stringify(params),
  });
  return response.json();
};

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultQuery={EXAMPLE_QUERY} />
  </StrictMode>,
);
