import { useEffect, useMemo, useState } from "react";
import { ComparisonView } from "./components/ComparisonView.tsx";
import { CorpusBrowser } from "./components/CorpusBrowser.tsx";
import { DistributionPanel } from "./components/DistributionPanel.tsx";
import { ErrorAlert } from "./components/ErrorAlert.tsx";
import { ErrorBoundary } from "./components/ErrorBoundary.tsx";
import { Examples } from "./components/Examples.tsx";
import { HitList, type TokenScale } from "./components/HitList.tsx";
import { LayerChart } from "./components/LayerChart.tsx";
import { LayerHeatmap } from "./components/LayerHeatmap.tsx";
import { QueryForm } from "./components/QueryForm.tsx";
import { RecentQueries } from "./components/RecentQueries.tsx";
import { SequenceView } from "./components/SequenceView.tsx";
import { WhatIfView } from "./components/WhatIfView.tsx";
import { comparedIndexesOf, describeScoring, type FormValues, INITIAL_VALUES, toQueryArgs } from "./form.ts";
import { fetchMeta, type IndexMeta } from "./queries.ts";
import { useInfluenceRun } from "./use-influence-run.ts";

/** The influence dashboard: a query form and recent queries beside the answer's panels. */
export function App() {
  const [meta, setMeta] = useState<IndexMeta>();
  const [metaError, setMetaError] = useState<string>();
  const [values, setValues] = useState<FormValues>(INITIAL_VALUES);
  const [scale, setScale] = useState<TokenScale>("all");
  /** The sequence shown in full, opened from a hit or from the corpus. */
  const [openId, setOpenId] = useState<string>();
  /** The form as it was run, for the answer's description. */
  const [ran, setRan] = useState<FormValues>();
  /** The hit whose "what if" view is open, for the query as it was run. */
  const [whatIfId, setWhatIfId] = useState<string>();
  const ranQuery = useMemo(() => ran && toQueryArgs(ran), [ran]);
  const query = useInfluenceRun();
  /** A link to the comparison view runs the first question and compares its answer at once. */
  const [linkedComparison] = useState(() => comparedIndexesOf(window.location.search));

  const submit = (next: FormValues) => {
    setValues(next);
    setRan(next);
    setWhatIfId(undefined);
    void query.run(next);
  };

  // biome-ignore lint/correctness/useExhaustiveDependencies: runs once, when the page opens
  useEffect(() => {
    fetchMeta().then(
      (loaded) => {
        setMeta(loaded);
        if (linkedComparison) submit(INITIAL_VALUES);
      },
      (err: Error) => setMetaError(`cannot read the index: ${err.message}`),
    );
  }, []);

  return (
    <div className="page">
      <header className="top">
        <h1>influence-graph</h1>
        {meta && (
          <span className="index-info">
            index {meta.index.name}: {meta.index.model.architecture} · corpus {meta.index.corpus.name} ({meta.index.corpus.sequences} sequences)
            {meta.indexes.length > 1 && ` · ${meta.indexes.length - 1} more to compare with`}
          </span>
        )}
        <a href="/playground/">GraphQL playground</a>
      </header>
      <aside className="side">
        <QueryForm
          values={values}
          layers={meta?.layers.map((l) => l.layer) ?? []}
          contextLength={meta?.index.model.contextLength}
          busy={query.busy}
          onChange={setValues}
          onSubmit={submit}
        />
        <Examples busy={query.busy} onSelect={submit} />
        <RecentQueries queries={query.recent} onSelect={submit} />
        <CorpusBrowser onOpen={setOpenId} />
      </aside>
      <main className="results">
        <ErrorAlert messages={metaError ? [metaError, ...query.errors] : query.errors} />
        {openId !== undefined && <SequenceView id={openId} onClose={() => setOpenId(undefined)} />}
        {whatIfId !== undefined && ranQuery && <WhatIfView id={whatIfId} query={ranQuery} onClose={() => setWhatIfId(undefined)} />}
        {query.id === 0 && (
          <section className="panel empty-state" data-testid="empty-state">
            <h2>Ask which training sequences made the model say something</h2>
            <p>
              Pick one of the examples, or write a prompt and the completion whose probability you want explained, then press <b>Run</b>. The answer lists the
              training sequences with the most influence on that completion, each token coloured by its share, with the influence per layer and over the whole
              corpus.
            </p>
          </section>
        )}
        {query.busy && <p role="status">Running the query…</p>}
        <ErrorBoundary key={query.id}>
          {query.influence && (
            <>
              <p className="summary">
                Completion loss (summed NLL) {query.influence.query.loss.toFixed(3)} · {query.influence.query.tokenTexts.length} query tokens ·{" "}
                {ran && describeScoring(ran)} · answered in {Math.round(query.influence.timings.totalMs)} ms
              </p>
              <HitList hits={query.influence.hits} scale={scale} onScaleChange={setScale} onOpen={setOpenId} onWhatIf={setWhatIfId} />
              <div className="charts">
                <LayerChart hits={query.influence.hits} />
                <LayerHeatmap hits={query.influence.hits} />
              </div>
            </>
          )}
          {query.distribution && <DistributionPanel distribution={query.distribution} />}
          {meta && meta.indexes.length > 1 && ran && ranQuery && (
            <ComparisonView
              key={query.id}
              indexes={meta.indexes.map((i) => i.name)}
              query={ranQuery}
              topK={ran.topK}
              linked={query.id === 1 ? linkedComparison : undefined}
            />
          )}
        </ErrorBoundary>
      </main>
    </div>
  );
}
