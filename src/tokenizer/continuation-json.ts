import { isPlainObject } from "./read-files.js";

type Component = Record<string, unknown>;

/**
 * The tokenizer.json for text that continues earlier text (a query's completion after its prompt)
 * and for showing single tokens, or undefined when it would be the same tokenizer.
 * SentencePiece-style tokenizers spell a space as `▁` and put one before the whole text (a
 * `Prepend` normalizer, or a `Metaspace` pre-tokenizer that prepends), which their decoders take
 * away again (`Strip`, `Metaspace`). Both belong to the start of a text only: after "Hello",
 * " world" is "▁world" and not "▁", "▁world"; and the token "▁world" reads " world".
 */
export function continuationTokenizerJson(json: Component): Component | undefined {
  let changed = false;
  const edit = (replacement: Component | null): Component | null => {
    changed = true;
    return replacement;
  };
  const result = {
    ...json,
    normalizer: rewrite(json.normalizer, "normalizers", (c) => (c.type === "Prepend" ? edit(null) : c)),
    pre_tokenizer: rewrite(json.pre_tokenizer, "pretokenizers", (c) =>
      c.type === "Metaspace" && c.prepend_scheme !== "never" ? edit({ ...c, prepend_scheme: "never", add_prefix_space: false }) : c,
    ),
    decoder: rewrite(json.decoder, "decoders", (c) => {
      if (c.type === "Strip" && c.start !== 0) return edit({ ...c, start: 0 });
      // The library's Metaspace decoder always drops the first token's leading space: a plain replacement keeps it.
      if (c.type === "Metaspace") return edit({ type: "Replace", pattern: { String: c.replacement ?? "▁" }, content: " " });
      return c;
    }),
  };
  return changed ? result : undefined;
}

/** A tokenizer.json component with `change` applied to it, or to each member of a Sequence of them (dropping those it maps to null). */
function rewrite(component: unknown, membersKey: string, change: (c: Component) => Component | null): unknown {
  if (!isPlainObject(component)) return component;
  if (component.type === "Sequence" && Array.isArray(component[membersKey])) {
    const members = (component[membersKey] as unknown[]).map((m) => (isPlainObject(m) ? change(m) : m)).filter((m) => m !== null);
    return { ...component, [membersKey]: members };
  }
  return change(component);
}
