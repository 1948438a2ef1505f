// Chart.js, registered with only the parts the dashboard draws (tree-shaken into the bundle).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
);

export interface Series {
  label: string;
  data: number[];
  color: string;
  axis?: "y" | "y1";
}

export function lineChart(canvas: HTMLCanvasElement, labels: string[], series: Series[]): Chart {
  const twoAxes = series.some((s) => s.axis === "y1");
  return new Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: series.map((s) => ({
        label: s.label,
        data: s.data,
        borderColor: s.color,
        backgroundColor: s.color,
        yAxisID: s.axis ?? "y",
        tension: 0.2,
        pointRadius: 2,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        y: { beginAtZero: true },
        ...(twoAxes ? { y1: { beginAtZero: true, position: "right" as const, grid: { drawOnChartArea: false } } } : {}),
      },
    },
  });
}

export function barChart(canvas: HTMLCanvasElement, labels: string[], series: Series[]): Chart {
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((s) => ({ label: s.label, data: s.data, backgroundColor: s.color })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      indexAxis: "y",
      scales: { x: { beginAtZero: true } },
    },
  });
}
