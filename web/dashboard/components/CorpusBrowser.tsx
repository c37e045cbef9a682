import { type FormEvent, useState } from "react";
import { fetchSequences, type SequencePage } from "../queries.ts";

const PAGE_SIZE = 10;
const SNIPPET = 120;

/** The training corpus a page at a time, optionally only sequences whose text contains a search string. */
export function CorpusBrowser({ onOpen }: { onOpen(id: string): void }) {
  const [search, setSearch] = useState("");
  const [page, setPage] = useState<SequencePage>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const load = async (after: string | null) => {
    setBusy(true);
    setError(undefined);
    try {
      setPage(await fetchSequences(search, PAGE_SIZE, after));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void load(null);
  };

  return (
    <section className="panel corpus" aria-label="corpus">
      <h2>Corpus</h2>
      <search>
        <form className="row" onSubmit={submit}>
          <input
            name="search"
            aria-label="Search the corpus"
            placeholder="text to find (empty: all)"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
          <button type="submit" disabled={busy}>
            Search
          </button>
        </form>
      </search>
      {error && <p role="alert">{error}</p>}
      {page && (
        <>
          <p className="caption" data-testid="corpus-count">
            {page.totalCount} {page.totalCount === 1 ? "sequence" : "sequences"}
          </p>
          <ul className="corpus-list">
            {page.sequences.map((s) => (
              <li key={s.id}>
                <button type="button" data-testid="corpus-sequence" data-sequence-id={s.id} onClick={() => onOpen(s.id)}>
                  <span className="sequence-id">{s.id}</span> {(s.text ?? `${s.tokenCount} tokens`).slice(0, SNIPPET)}
                </button>
              </li>
            ))}
          </ul>
          {page.hasNextPage && (
            <button type="button" disabled={busy} onClick={() => void load(page.endCursor)}>
              Next page
            </button>
          )}
        </>
      )}
    </section>
  );
}
