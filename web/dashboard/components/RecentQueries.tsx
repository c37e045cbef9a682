import { describeLogged, type FormValues, fromLoggedParameters } from "../form.ts";
import type { LoggedQuery } from "../queries.ts";

/** The server's latest influence queries (from every client); choosing one runs it again. */
export function RecentQueries({ queries, onSelect }: { queries: LoggedQuery[]; onSelect(values: FormValues): void }) {
  return (
    <section className="panel recent">
      <h2>Recent queries</h2>
      {queries.length === 0 ? (
        <p className="caption">None yet.</p>
      ) : (
        <ul>
          {queries.map((q) => (
            <li key={q.id}>
              <button type="button" data-testid="recent-query" title={q.error ?? "run again"} onClick={() => onSelect(fromLoggedParameters(q.parameters))}>
                {describeLogged(q.parameters)}
              </button>
              <span className="meta">
                {new Date(q.createdAt).toLocaleTimeString()}
                {q.error && <span className="failed"> · failed</span>}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
