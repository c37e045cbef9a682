import { useMemo } from "react";
import { maxAbs, NEGATIVE, POSITIVE } from "../colors.ts";
import type { ChartOption } from "../echarts.ts";
import { formatScore } from "../format.ts";
import type { Hit } from "../queries.ts";
import { EChart } from "./EChart.tsx";

const ROW_HEIGHT = 26;

/** Hits x layers: where in the network each training sequence's influence comes from. */
export function LayerHeatmap({ hits }: { hits: Hit[] }) {
  const option = useMemo<ChartOption>(() => {
    const layers = [...new Set(hits.flatMap((h) => h.layerScores.map((s) => s.layer)))].sort((a, b) => a - b);
    const cells = hits.flatMap((hit, row) => hit.layerScores.map((s) => [layers.indexOf(s.layer), row, s.score]));
    // Symmetric range: white is zero, so the two hues keep their meaning.
    const range = maxAbs(cells.map((c) => c[2])) || 1;
    return {
      grid: { left: 150, right: 20, top: 10, bottom: 70 },
      tooltip: {
        formatter: (p) => {
          const [x, y, v] = (p as { value: number[] }).value;
          return `${hits[y].sequence.id}, layer ${layers[x]}: ${formatScore(v)}`;
        },
      },
      xAxis: { type: "category", name: "layer", nameLocation: "middle", nameGap: 24, data: layers.map(String) },
      yAxis: { type: "category", inverse: true, data: hits.map((h) => `#${h.rank} ${h.sequence.id}`) },
      visualMap: {
        type: "continuous",
        min: -range,
        max: range,
        orient: "horizontal",
        left: "center",
        bottom: 0,
        itemHeight: 160,
        text: [formatScore(range), formatScore(-range)],
        inRange: { color: [NEGATIVE.hex, "#ffffff", POSITIVE.hex] },
      },
      series: [{ type: "heatmap", data: cells, itemStyle: { borderColor: "#fff", borderWidth: 1 } }],
    };
  }, [hits]);
  return (
    <section className="panel">
      <h2>Hits × layers</h2>
      <p className="caption">Each hit's score split by transformer block.</p>
      <EChart option={option} height={hits.length * ROW_HEIGHT + 90} data-testid="layer-heatmap" />
    </section>
  );
}
