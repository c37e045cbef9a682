import { DEMO_QUERIES } from "../../scripts/demo-queries.ts";

const { prompt, completion } = DEMO_QUERIES[0];

/** Shown on a first visit (GraphiQL keeps the user's own tabs in localStorage afterwards): a question the demo index answers. */
export const EXAMPLE_QUERY = `# The training sequences that most influenced a completion (EK-FAC influence).
# Press the run button (or Ctrl-Enter). Explore the schema with the Docs button on the left.
query Influence {
  influence(
    prompt: ${JSON.stringify(prompt)}
    completion: ${JSON.stringify(completion)}
    topK: 5
  ) {
    query { loss }
    hits {
      rank
      score
      sequence { id text }
      layerScores { layer score }
    }
  }
}
`;
