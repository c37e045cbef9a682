import { useCallback, useEffect, useRef, useState } from "react";
import { FormError, type FormValues, toInfluenceArgs } from "./form.ts";
import { type Distribution, fetchDistribution, fetchInfluence, fetchRecentInfluenceQueries, type InfluenceAnswer, type LoggedQuery } from "./queries.ts";

const RECENT = 10;

export interface InfluenceRun {
  /** Increases with every run: a key that resets panels. */
  id: number;
  busy: boolean;
  influence?: InfluenceAnswer;
  distribution?: Distribution;
  recent: LoggedQuery[];
  errors: string[];
  run(values: FormValues): Promise<void>;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Runs a query: the ranked hits and the corpus-wide distribution are two requests, sent together
 * so that either shows as soon as it is ready, each failing on its own; then refreshes the
 * recent queries, which now include it.
 */
export function useInfluenceRun(): InfluenceRun {
  const [id, setId] = useState(0);
  // The run whose answers may still be shown: a slower, older run must not overwrite a newer one.
  const latest = useRef(0);
  const [busy, setBusy] = useState(false);
  const [influence, setInfluence] = useState<InfluenceAnswer>();
  const [distribution, setDistribution] = useState<Distribution>();
  const [recent, setRecent] = useState<LoggedQuery[]>([]);
  const [errors, setErrors] = useState<string[]>([]);
  // Both requests usually fail for the same reason (bad input): say it once.
  const report = useCallback((err: unknown) => setErrors((list) => (list.includes(messageOf(err)) ? list : [...list, messageOf(err)])), []);

  const refreshRecent = useCallback(() => fetchRecentInfluenceQueries(RECENT).then(setRecent, report), [report]);
  useEffect(() => void refreshRecent(), [refreshRecent]);

  const run = useCallback(
    async (values: FormValues) => {
      const runId = ++latest.current;
      const whileCurrent =
        <T>(apply: (value: T) => void) =>
        (value: T) => {
          if (latest.current === runId) apply(value);
        };
      setId(runId);
      setErrors([]);
      setInfluence(undefined);
      setDistribution(undefined);
      let args: ReturnType<typeof toInfluenceArgs>;
      try {
        args = toInfluenceArgs(values);
      } catch (err) {
        if (err instanceof FormError) return report(err);
        throw err;
      }
      setBusy(true);
      // The distribution covers the whole corpus: neither topK nor the token filter applies.
      const { topK, containsToken, ...query } = args;
      await Promise.all([
        fetchInfluence(args).then(whileCurrent(setInfluence), whileCurrent(report)),
        fetchDistribution(query).then(whileCurrent(setDistribution), whileCurrent(report)),
      ]);
      whileCurrent(setBusy)(false);
      await refreshRecent();
    },
    [report, refreshRecent],
  );

  return { id, busy, influence, distribution, recent, errors, run };
}
