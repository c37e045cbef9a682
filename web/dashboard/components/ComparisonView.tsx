import { useEffect, useState } from "react";
import { signOf } from "../colors.ts";
import { formatPercent, formatScore } from "../format.ts";
import { type Comparison, fetchComparison, type IndexInfluence, type QueryArgs } from "../queries.ts";

/** A layer's share of an index's hits' influence as a bar: width its absolute share, colour its sign. */
function LayerBars({ shares }: { shares: IndexInfluence["layerShares"] }) {
  return (
    <ul className="layer-bars" data-testid="layer-bars">
      {shares.map((s) => (
        <li key={s.layer} data-layer={s.layer} data-share={s.share}>
          <span className="layer-name">layer {s.layer}</span>
          <span className="bar-track">
            <span className={`bar ${signOf(s.share)}`} style={{ width: formatPercent(Math.abs(s.share)) }} />
          </span>
          <span className="bar-value">{formatPercent(s.share)}</span>
        </li>
      ))}
    </ul>
  );
}

function IndexColumn({ result, common }: { result: IndexInfluence; common: Set<string> }) {
  return (
    <div className="comparison-column" data-testid="comparison-column" data-index={result.index} data-mean-token-overlap={result.meanTokenOverlap}>
      <h3>{result.index}</h3>
      <p className="caption">mean token overlap with the query {formatPercent(result.meanTokenOverlap)}</p>
      <LayerBars shares={result.layerShares} />
      <ol className="comparison-hits">
        {result.hits.map((hit) => (
          <li
            key={hit.sequence.id}
            className={common.has(hit.sequence.id) ? "common" : undefined}
            data-testid="comparison-hit"
            data-sequence-id={hit.sequence.id}
            data-score={hit.score}
            data-token-overlap={hit.tokenOverlap}
          >
            <span className="rank">#{hit.rank}</span> <span className="sequence-id">{hit.sequence.id}</span>{" "}
            <span className={`score ${signOf(hit.score)}`}>{formatScore(hit.score)}</span>{" "}
            <span className="approx">overlap {formatPercent(hit.tokenOverlap)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

/**
 * Two served indexes (e.g. two models of one corpus) asked the same query: their hits side by side
 * with their influence by layer and how literal each hit is, and how far their top hits agree.
 * `linked`: the pair a link asked for, compared as soon as the view opens.
 */
export function ComparisonView({ indexes, query, topK, linked }: { indexes: string[]; query: QueryArgs; topK: number; linked?: [string, string] }) {
  const [chosen, setChosen] = useState<[string, string]>(linked ?? [indexes[0], indexes[1]]);
  const [answer, setAnswer] = useState<Comparison>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  const compare = () => {
    setError(undefined);
    setBusy(true);
    fetchComparison(query, chosen, topK)
      .then(setAnswer, (err: Error) => setError(err.message))
      .finally(() => setBusy(false));
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: a linked pair is compared once, when the view opens
  useEffect(() => {
    if (linked) compare();
  }, []);
  const choose = (i: 0 | 1, name: string) => setChosen((pair) => (i === 0 ? [name, pair[1]] : [pair[0], name]));
  const overlap = answer?.overlaps[0];
  const common = new Set(overlap?.ids ?? []);

  return (
    <section className="panel comparison" data-testid="comparison" aria-label="compare indexes">
      <header className="panel-header">
        <h2>Compare two indexes</h2>
        {([0, 1] as const).map((i) => (
          <label key={i}>
            {i === 0 ? "left" : "right"}{" "}
            <select value={chosen[i]} onChange={(e) => choose(i, e.target.value)}>
              {indexes.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </label>
        ))}
        <button type="button" disabled={busy || chosen[0] === chosen[1]} onClick={compare}>
          Compare
        </button>
      </header>
      <p className="caption">
        The query as last run, asked of both indexes. Hits in both top lists are marked; the overlap is of sequence ids. Token overlap: the share of a hit's
        distinct tokens that occur in the query (lower is more abstract).
      </p>
      {error && <p role="alert">{error}</p>}
      {busy && <p role="status">Comparing…</p>}
      {answer && overlap && (
        <>
          <p
            className="overlap"
            data-testid="overlap"
            data-count={overlap.count}
            data-jaccard={overlap.jaccard}
            data-rank-correlation={overlap.rankCorrelation ?? ""}
          >
            {overlap.count} {overlap.count === 1 ? "sequence" : "sequences"} in both top lists · Jaccard {overlap.jaccard.toFixed(3)} · rank correlation of the
            common ones {overlap.rankCorrelation === null ? "—" : overlap.rankCorrelation.toFixed(3)}
            {overlap.idsMatch === false && " · the indexes' corpora give these ids to different sequences"}
          </p>
          <div className="comparison-columns">
            {answer.results.map((result) => (
              <IndexColumn key={result.index} result={result} common={common} />
            ))}
          </div>
        </>
      )}
    </section>
  );
}
