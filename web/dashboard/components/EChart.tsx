import { type HTMLAttributes, useEffect, useRef } from "react";
import { type ChartOption, init } from "../echarts.ts";

interface EChartProps extends HTMLAttributes<HTMLDivElement> {
  option: ChartOption;
  /** CSS height of the chart (ECharts needs a sized box). */
  height: number;
}

/** An ECharts instance in a div: created on mount, resized with its box, redrawn when `option` changes. */
export function EChart({ option, height, className, style, ...rest }: EChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<ReturnType<typeof init>>(null);

  useEffect(() => {
    const instance = init(box.current!);
    chart.current = instance;
    const observer = new ResizeObserver(() => instance.resize());
    observer.observe(box.current!);
    return () => {
      observer.disconnect();
      instance.dispose();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    // notMerge: a new query's chart replaces the previous one, series and axes included.
    chart.current?.setOption(option, { notMerge: true });
  }, [option]);

  return <div ref={box} className={["chart", className].filter(Boolean).join(" ")} style={{ ...style, height }} {...rest} />;
}
