import { useMemo } from "react";
import { layerTotals } from "../analysis.ts";
import { NEGATIVE, POSITIVE } from "../colors.ts";
import type { ChartOption } from "../echarts.ts";
import { formatScore } from "../format.ts";
import type { Hit } from "../queries.ts";
import { EChart } from "./EChart.tsx";

/** One bar per transformer block: how much of the hits' influence flows through its MLP. */
export function LayerChart({ hits }: { hits: Hit[] }) {
  const totals = useMemo(() => layerTotals(hits), [hits]);
  const option = useMemo<ChartOption>(
    () => ({
      grid: { left: 70, right: 20, top: 30, bottom: 40 },
      tooltip: { trigger: "axis", valueFormatter: (v) => formatScore(Number(v)) },
      xAxis: { type: "category", name: "layer", nameLocation: "middle", nameGap: 26, data: totals.map((t) => String(t.layer)) },
      yAxis: { type: "value", name: "summed influence", axisLabel: { formatter: (v: number) => formatScore(v) } },
      series: [{ type: "bar", data: totals.map((t) => ({ value: t.score, itemStyle: { color: t.score >= 0 ? POSITIVE.hex : NEGATIVE.hex } })) }],
    }),
    [totals],
  );
  return (
    <section className="panel">
      <h2>Influence by layer</h2>
      <p className="caption">Sum over the {hits.length} hits of each block's part of the score (its MLP matrices).</p>
      <EChart option={option} height={220} data-testid="layer-chart" data-bars={totals.length} data-layers={totals.map((t) => t.layer).join(",")} />
    </section>
  );
}
