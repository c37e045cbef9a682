import { EXAMPLES, exampleValues, type FormValues } from "../form.ts";

/** One-click example questions (the README's demo questions). */
export function Examples({ busy, onSelect }: { busy: boolean; onSelect(values: FormValues): void }) {
  return (
    <section className="panel examples">
      <h2>Examples</h2>
      <ul>
        {EXAMPLES.map((example) => (
          <li key={example.prompt}>
            <button type="button" data-testid="example" disabled={busy} title={example.theme} onClick={() => onSelect(exampleValues(example))}>
              {example.prompt} <b>▸{example.completion}</b>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
