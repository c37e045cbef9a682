import { useEffect, useState } from "react";
import { fetchSequence, type SequenceDetail } from "../queries.ts";

/** A training sequence in full: its text (or token ids when the corpus gave only those) and where it comes from. */
export function SequenceView({ id, onClose }: { id: string; onClose(): void }) {
  const [sequence, setSequence] = useState<SequenceDetail | null>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    setSequence(undefined);
    setError(undefined);
    fetchSequence(id).then(setSequence, (err: Error) => setError(err.message));
  }, [id]);

  return (
    <section className="panel sequence-view" data-testid="sequence-view" aria-label={`sequence ${id}`}>
      <header className="panel-header">
        <h2>Sequence {id}</h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      {error && <p role="alert">{error}</p>}
      {sequence === null && <p>The corpus has no sequence {id}.</p>}
      {sequence && (
        <>
          <p className="caption" data-testid="sequence-meta">
            document {sequence.documentId}, tokens {sequence.offset} to {sequence.offset + sequence.tokenCount - 1} ({sequence.tokenCount} tokens)
          </p>
          {sequence.text === null ? (
            <p className="sequence-text" data-testid="sequence-tokens">
              {sequence.tokens.join(" ")}
            </p>
          ) : (
            <p className="sequence-text" data-testid="sequence-text">
              {sequence.text}
            </p>
          )}
        </>
      )}
    </section>
  );
}
