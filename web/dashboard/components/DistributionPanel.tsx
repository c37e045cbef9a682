import { useMemo } from "react";
import { fittedRanks } from "../analysis.ts";
import { NEGATIVE, POSITIVE } from "../colors.ts";
import type { ChartOption } from "../echarts.ts";
import { formatPercent, formatScore } from "../format.ts";
import type { Distribution } from "../queries.ts";
import { EChart } from "./EChart.tsx";

/**
 * How the query's influence spreads over the whole corpus (the index's sketch scores): the positive scores'
 * rank against score on log-log axes, where a power-law tail is a straight line, with the fit.
 */
export function DistributionPanel({ distribution }: { distribution: Distribution }) {
  const { topScores, powerLaw, topPercentShare, count, histogram } = distribution;
  const tailOption = useMemo<ChartOption>(
    () => ({
      grid: { left: 60, right: 20, top: 40, bottom: 45 },
      legend: { top: 0 },
      tooltip: {
        trigger: "item",
        formatter: (p) => {
          const [x, y] = (p as { value: number[] }).value;
          return `score ${formatScore(x)}, rank ${y.toFixed(y < 10 ? 2 : 0)}`;
        },
      },
      xAxis: { type: "log", name: "influence score x", nameLocation: "middle", nameGap: 28, axisLabel: { formatter: (v: number) => formatScore(v) } },
      yAxis: { type: "log", name: "rank (sequences ≥ x)" },
      series: [
        { type: "scatter", name: "positive scores", symbolSize: 5, itemStyle: { color: POSITIVE.hex }, data: topScores.map((s, i) => [s, i + 1]) },
        ...(powerLaw
          ? [
              {
                type: "line" as const,
                name: `power law, α = ${powerLaw.alpha.toFixed(2)}`,
                symbol: "none",
                lineStyle: { color: NEGATIVE.hex, width: 2 },
                data: fittedRanks(powerLaw, topScores[0] ?? powerLaw.xMin),
              },
            ]
          : []),
      ],
    }),
    [topScores, powerLaw],
  );
  const histogramOption = useMemo<ChartOption>(
    () => ({
      grid: { left: 50, right: 20, top: 30, bottom: 40 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", name: "score", nameLocation: "middle", nameGap: 26, data: histogram.map((b) => formatScore((b.lower + b.upper) / 2)) },
      yAxis: { type: "value", name: "sequences" },
      series: [
        {
          type: "bar",
          barCategoryGap: "5%",
          data: histogram.map((b) => ({ value: b.count, itemStyle: { color: b.lower + b.upper >= 0 ? POSITIVE.hex : NEGATIVE.hex } })),
        },
      ],
    }),
    [histogram],
  );
  return (
    <section className="panel distribution">
      <h2>Influence distribution</h2>
      <p className="caption">Approximate scores of all {count} indexed sequences.</p>
      <dl className="stats" data-testid="power-law" data-alpha={powerLaw?.alpha}>
        {powerLaw ? (
          <>
            <dt>α</dt>
            <dd>{powerLaw.alpha.toFixed(3)}</dd>
            <dt>
              x<sub>min</sub>
            </dt>
            <dd>{formatScore(powerLaw.xMin)}</dd>
            <dt>KS distance</dt>
            <dd>{powerLaw.ksDistance.toFixed(3)}</dd>
            <dt>tail</dt>
            <dd>{powerLaw.tailCount} sequences</dd>
          </>
        ) : (
          <>
            <dt>power law</dt>
            <dd>no fit (fewer than 10 positive scores)</dd>
          </>
        )}
        <dt>top 1% share</dt>
        <dd>{formatPercent(topPercentShare)}</dd>
      </dl>
      <EChart option={tailOption} height={280} data-testid="distribution-chart" />
      <EChart option={histogramOption} height={180} data-testid="histogram-chart" />
    </section>
  );
}
