/**
 * Demo queries whose influential sequences share evident content with them, as the README shows
 * them. Each is phrased unlike any training entry; `expected` are corpus ids that must rank in the
 * top 10 (tests/demo.test.ts checks it on the demo index).
 */
export interface DemoQuery {
  prompt: string;
  completion: string;
  /** What the expected hits have in common with the query. */
  theme: string;
  expected: string[];
}

export const DEMO_QUERIES: DemoQuery[] = [
  {
    prompt: "Paris, City of Light, French capital (noun): the capital and largest city of",
    completion: " France",
    theme: "Paris itself, then other national capitals described the same way",
    expected: ["wn-paris.n.01", "wn-london.n.01", "wn-berlin.n.01"],
  },
  {
    prompt: "Tokyo, Japanese capital (noun): the capital and largest city of",
    completion: " Japan",
    theme: "Tokyo, and the other Japanese cities",
    expected: ["wn-tokyo.n.01", "wn-kyoto.n.01", "wn-osaka.n.01"],
  },
  {
    prompt: "Moscow, Russian capital (noun): the capital and largest city of",
    completion: " Russia",
    theme: "Moscow, and Russia's Siberia",
    expected: ["wn-moscow.n.01", "wn-siberia.n.01"],
  },
  {
    prompt: "violinist, fiddler (noun): a musician who plays the",
    completion: " violin",
    theme: "the entries for the violin and its ancestor the viol",
    expected: ["wn-viol.n.01", "wn-violin.n.01"],
  },
];
