// Monaco's editor, JSON and GraphQL workers, bundled (GraphiQL would otherwise fetch them from a CDN).
import "graphiql/setup-workers/vite";
import "graphiql/style.css";
import { useGraphiQL } from "@graphiql/react";
import { GraphiQL, type GraphiQLProps } from "graphiql";
import { StrictMode, useEffect } from "react";
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

/** Long lines wrap in the query and variables editors instead of running off their right edge (GraphiQL has no prop for it). */
function WrapLongLines() {
  const query = useGraphiQL((state) => state.queryEditor);
  const variables = useGraphiQL((state) => state.variableEditor);
  useEffect(() => {
    for (const editor of [query, variables]) editor?.updateOptions({ wordWrap: "on" });
  }, [query, variables]);
  return null;
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} defaultQuery={EXAMPLE_QUERY}>
      <GraphiQL.Footer>
        <WrapLongLines />
      </GraphiQL.Footer>
    </GraphiQL>
  </StrictMode>,
);
