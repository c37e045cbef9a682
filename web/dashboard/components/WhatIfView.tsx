import { useEffect, useRef, useState } from "react";
import { maxAbs, signOf } from "../colors.ts";
import { formatPercent, formatScore } from "../format.ts";
import { fetchWhatIf, type QueryArgs, type SequenceKind, type TokenScore } from "../queries.ts";
import { TokenText } from "./TokenText.tsx";

/** What each kind of sequence is, in the card's title. */
const KIND_LABELS: Record<SequenceKind | "ORIGINAL", string> = {
  ORIGINAL: "original",
  GIVEN: "edited text",
  SENTENCES_SWAPPED: "sentences swapped",
  HALVES_SWAPPED: "halves swapped",
  PARTS_SWAPPED: "completion-related words first",
  BEFORE_REMOVED: "part before the completion-related words removed",
  AFTER_REMOVED: "part after the completion-related words removed",
};

interface Card {
  /** Unique in the view: the kind, and for edited texts the number of the edit. */
  key: string;
  kind: SequenceKind | "ORIGINAL";
  text: string;
  score: number;
  change: number | null;
  tokenScores: TokenScore[];
}

/** "−1.2e+3 (−12.0%)": a score's change against the original's, signed, and as a share of it. */
function describeChange(change: number, original: number): string {
  const sign = change > 0 ? "+" : change < 0 ? "−" : "±";
  const share = original === 0 ? "" : ` (${sign}${formatPercent(Math.abs(change / original))})`;
  return `${sign}${formatScore(Math.abs(change))}${share}`;
}

const textOf = (tokens: TokenScore[]) => tokens.map((t) => t.text).join("");

/**
 * "What if this hit were different?": the hit beside its word-order variants and any edited text,
 * each scored exactly as a training sequence for the same query, side by side with their token
 * heat maps on one colour scale.
 */
export function WhatIfView({ id, query, onClose }: { id: string; query: QueryArgs; onClose(): void }) {
  const [cards, setCards] = useState<Card[]>([]);
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const edits = useRef(0);

  useEffect(() => {
    setCards([]);
    setError(undefined);
    setBusy(true);
    fetchWhatIf(query, id, { variants: true })
      .then(
        (answer) => {
          const original = answer.original;
          setDraft(original.sequence.text ?? textOf(original.tokenScores));
          setCards([
            { key: "ORIGINAL", kind: "ORIGINAL", text: textOf(original.tokenScores), score: original.score, change: null, tokenScores: original.tokenScores },
            ...answer.sequences.map((s) => ({ ...s, key: s.kind })),
          ]);
        },
        (err: Error) => setError(err.message),
      )
      .finally(() => setBusy(false));
  }, [id, query]);

  const scoreDraft = () => {
    setError(undefined);
    setBusy(true);
    fetchWhatIf(query, id, { sequences: [draft] })
      .then(
        (answer) => setCards((list) => [...list, ...answer.sequences.map((s) => ({ ...s, key: `edit-${++edits.current}` }))]),
        (err: Error) => setError(err.message),
      )
      .finally(() => setBusy(false));
  };

  const original = cards[0]?.score;
  const reference = maxAbs(cards.flatMap((c) => c.tokenScores.map((t) => t.score)));
  return (
    <section className="panel what-if" data-testid="what-if" aria-label={`what if ${id}`}>
      <header className="panel-header">
        <h2>What if {id} were different?</h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      <p className="caption">
        Each sequence scored exactly, as if the model had been trained on it, for the same query; tokens share one colour scale. Edit the text or start from a
        variant, then score it.
      </p>
      <div className="what-if-editor">
        <textarea aria-label="Edited text" value={draft} rows={3} onChange={(e) => setDraft(e.target.value)} />
        <button type="button" disabled={busy || draft === ""} onClick={scoreDraft}>
          Score this text
        </button>
      </div>
      {error && <p role="alert">{error}</p>}
      {busy && <p role="status">Scoring…</p>}
      <ol className="what-if-cards">
        {cards.map((card) => (
          <li key={card.key} className="what-if-card" data-testid="what-if-card" data-kind={card.kind} data-score={card.score} data-change={card.change ?? ""}>
            <header>
              <span className="what-if-kind">{KIND_LABELS[card.kind]}</span>
              <span className={`score ${signOf(card.score)}`}>score {formatScore(card.score)}</span>
              {card.change !== null && original !== undefined && <span className="change">{describeChange(card.change, original)}</span>}
              <button type="button" className="use-text" onClick={() => setDraft(card.text)}>
                Edit this
              </button>
            </header>
            <TokenText tokens={card.tokenScores} reference={reference} />
          </li>
        ))}
      </ol>
    </section>
  );
}
