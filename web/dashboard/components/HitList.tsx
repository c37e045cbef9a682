import { maxAbs, signOf } from "../colors.ts";
import { download, hitsToCsv, hitsToJson } from "../export.ts";
import { formatScore } from "../format.ts";
import type { Hit } from "../queries.ts";
import { TokenText } from "./TokenText.tsx";

/** What a token's colour intensity is relative to: the strongest token of all hits, or of its own hit. */
export type TokenScale = "all" | "hit";

const tokenScores = (hit: Hit) => hit.tokenScores.map((t) => t.score);

/** The ranked training sequences, each with its score and its tokens coloured by influence. */
export function HitList({
  hits,
  scale,
  onScaleChange,
  onOpen,
  onWhatIf,
}: {
  hits: Hit[];
  scale: TokenScale;
  onScaleChange(scale: TokenScale): void;
  onOpen(id: string): void;
  onWhatIf(id: string): void;
}) {
  const overall = maxAbs(hits.flatMap(tokenScores));
  return (
    <section className="panel">
      <header className="panel-header">
        <h2>Most influential training sequences</h2>
        <label>
          token colours relative to{" "}
          <select value={scale} onChange={(e) => onScaleChange(e.target.value as TokenScale)}>
            <option value="all">the strongest token of all hits</option>
            <option value="hit">the strongest token of each hit</option>
          </select>
        </label>
        <span className="exports">
          <button type="button" disabled={hits.length === 0} onClick={() => download("influence-hits.csv", "text/csv", hitsToCsv(hits))}>
            Export CSV
          </button>
          <button type="button" disabled={hits.length === 0} onClick={() => download("influence-hits.json", "application/json", hitsToJson(hits))}>
            Export JSON
          </button>
        </span>
      </header>
      <p className="caption">
        <span className="swatch pos" /> raised the completion's probability · <span className="swatch neg" /> lowered it · a token carries the update that
        predicts the next one.
      </p>
      {hits.length === 0 ? (
        <p>No sequence matched.</p>
      ) : (
        <ol className="hits">
          {hits.map((hit) => (
            <li key={hit.sequence.id} className="hit" data-testid="hit" data-sequence-id={hit.sequence.id} data-score={hit.score} data-sign={signOf(hit.score)}>
              <header>
                <span className="rank">#{hit.rank}</span>
                <span className="sequence-id">{hit.sequence.id}</span>
                <span className={`score ${signOf(hit.score)}`} data-scored-by={hit.scoredBy}>
                  {hit.scoredBy.toLowerCase()} {formatScore(hit.score)}
                </span>
                {hit.scoredBy === "EXACT" && <span className="approx">index {formatScore(hit.approxScore)}</span>}
                <button type="button" className="open-sequence" onClick={() => onOpen(hit.sequence.id)}>
                  Whole sequence
                </button>
                <button type="button" className="what-if-open" onClick={() => onWhatIf(hit.sequence.id)}>
                  What if…
                </button>
              </header>
              <TokenText tokens={hit.tokenScores} reference={scale === "all" ? overall : maxAbs(tokenScores(hit))} />
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
