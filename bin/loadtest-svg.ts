// The load test's picture, as a plain SVG (no network, no browser): for each phase, its latency
// percentiles as bars, and where it has one, how its requests spread (instances or replicas).
interface PhaseFigures {
  name: string;
  requestsPerSecond: number;
  latency: { p50: number; p97_5: number; p99: number };
  spread?: Record<string, number>;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759'];

export function loadtestSvg(phases: PhaseFigures[]): string {
  const rowHeight = 110;
  const width = 900;
  const maxLatency = Math.max(1, ...phases.map((phase) => phase.latency.p99));
  const parts: string[] = [];
  phases.forEach((phase, index) => {
    const top = 40 + index * rowHeight;
    parts.push(`<text x="10" y="${top}" font-weight="bold">${escape(phase.name)}: ${phase.requestsPerSecond.toFixed(0)} requests/s</text>`);
    const percentiles: [string, number][] = [['p50', phase.latency.p50], ['p97.5', phase.latency.p97_5], ['p99', phase.latency.p99]];
    percentiles.forEach(([label, value], bar) => {
      const y = top + 10 + bar * 18;
      const length = Math.max(1, (value / maxLatency) * 380);
      parts.push(`<text x="10" y="${y + 12}">${label}</text><rect x="60" y="${y}" width="${length.toFixed(1)}" height="14" fill="${COLORS[bar]}"/>`);
      parts.push(`<text x="${(66 + length).toFixed(1)}" y="${y + 12}">${value.toFixed(1)} ms</text>`);
    });
    const spread = Object.entries(phase.spread ?? {});
    const total = spread.reduce((sum, [, count]) => sum + count, 0);
    let x = 500;
    spread.forEach(([name, count], slice) => {
      const share = total ? count / total : 0;
      const length = share * 380;
      parts.push(`<rect x="${x.toFixed(1)}" y="${top + 10}" width="${length.toFixed(1)}" height="30" fill="${COLORS[slice % COLORS.length]}"/>`);
      parts.push(`<text x="${(x + 4).toFixed(1)}" y="${top + 56 + (slice % 2) * 14}">${escape(name)} ${count} (${(share * 100).toFixed(1)}%)</text>`);
      x += length;
    });
  });
  const height = 50 + phases.length * rowHeight;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="18" font-size="14">Load test: latency percentiles (left, same scale) and how requests spread (right)</text>
${parts.join('\n')}
</svg>
`;
}
