import type { FormEvent } from "react";
import type { FormValues, InputMode } from "../form.ts";

interface QueryFormProps {
  values: FormValues;
  /** Layers of the index, for the layer choice. */
  layers: number[];
  contextLength?: number;
  busy: boolean;
  onChange(values: FormValues): void;
  onSubmit(values: FormValues): void;
}

/** The influence query: prompt and completion (text or token ids), top-k, layers, token filter. */
export function QueryForm({ values, layers, contextLength, busy, onChange, onSubmit }: QueryFormProps) {
  const set = (patch: Partial<FormValues>) => onChange({ ...values, ...patch });
  const selected = values.layers ?? layers;
  const toggleLayer = (layer: number) => {
    const next = selected.includes(layer) ? selected.filter((l) => l !== layer) : [...selected, layer].sort((a, b) => a - b);
    // Every layer selected is no restriction at all: send none, as the API's default.
    set({ layers: next.length === layers.length ? null : next });
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSubmit(values);
  };
  const placeholder = values.mode === "text" ? undefined : "e.g. 464, 2068, 7586";

  return (
    <form className="panel query-form" onSubmit={submit} aria-label="influence query">
      <h2>Query</h2>
      <fieldset className="mode">
        <legend>Input</legend>
        {(["text", "tokens"] as InputMode[]).map((mode) => (
          <label key={mode}>
            {/* Text is not token ids, nor the reverse: switching empties both fields. */}
            <input type="radio" name="mode" value={mode} checked={values.mode === mode} onChange={() => set({ mode, prompt: "", completion: "" })} />{" "}
            {mode === "text" ? "text" : "token ids"}
          </label>
        ))}
      </fieldset>
      <label>
        Prompt
        <textarea name="prompt" rows={3} value={values.prompt} placeholder={placeholder} onChange={(e) => set({ prompt: e.target.value })} />
      </label>
      <label>
        Completion
        <textarea name="completion" rows={2} value={values.completion} placeholder={placeholder} onChange={(e) => set({ completion: e.target.value })} />
      </label>
      {contextLength !== undefined && <p className="hint">Prompt and completion: at most {contextLength} tokens together.</p>}
      <div className="row">
        <label>
          Top k
          <input name="topK" type="number" min={1} max={100} value={values.topK} onChange={(e) => set({ topK: e.target.valueAsNumber })} />
        </label>
        <label>
          Only sequences containing token
          <input name="containsToken" value={values.containsToken} placeholder={'" the" or #262'} onChange={(e) => set({ containsToken: e.target.value })} />
        </label>
      </div>
      <div className="row scoring">
        <label className="check">
          <input name="rerank" type="checkbox" checked={values.rerank} onChange={(e) => set({ rerank: e.target.checked })} /> Re-rank exactly
        </label>
        <label>
          Candidates
          <input
            name="candidates"
            type="number"
            min={values.topK}
            placeholder="default"
            value={values.candidates ?? ""}
            onChange={(e) => set({ candidates: Number.isNaN(e.target.valueAsNumber) ? null : e.target.valueAsNumber })}
          />
        </label>
      </div>
      <p className="hint">
        Candidates come from the vector search and are scored by the index's sketch (default max(100 k, 1000)); re-ranking recomputes the exact EK-FAC scores of
        the best max(3 k, 30): slower, exact.
      </p>
      <fieldset className="layers">
        <legend>Layers</legend>
        {layers.map((layer) => (
          <label key={layer}>
            <input type="checkbox" name="layer" value={layer} checked={selected.includes(layer)} onChange={() => toggleLayer(layer)} /> {layer}
          </label>
        ))}
      </fieldset>
      <button type="submit" disabled={busy}>
        {busy ? "Running…" : "Run"}
      </button>
    </form>
  );
}
