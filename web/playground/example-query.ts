/** Shown on a first visit (GraphiQL keeps the user's own tabs in localStorage afterwards). */
export const EXAMPLE_QUERY = `# The training sequences that most influenced a completion (EK-FAC influence).
# Press the run button (or Ctrl-Enter). Explore the schema with the Docs button on the left.
query Influence {
  influence(prompt: "The quick brown fox", completion: " jumps over the lazy dog", topK: 5) {
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
