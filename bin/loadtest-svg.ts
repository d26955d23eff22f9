// The load test's picture, as a plain SVG (no network, no browser): first what failed, then for
// each phase its latency percentiles as bars and, where it has one, how its requests spread
// (instances or replicas), as a bar with one legend line per part.
interface PhaseFigures {
  name: string;
  requestsPerSecond: number;
  latency: { p50: number; p97_5: number; p99: number };
  spread?: Record<string, number>;
}

interface Failure {
  phase: string;
  error: string;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
// Long enough for a status and a short problem detail, short enough for the width at 12px.
const clip = (text: string, max = 150) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759'];
const WIDTH = 900;
const BAR = 340; // the longest latency bar, from x = 60, leaving room for its label before the spread
const SPREAD = { x: 500, width: 380 };

// One phase's row, from `top` (its title's baseline): its SVG and its height.
function phaseRow(phase: PhaseFigures, top: number, maxLatency: number): { svg: string[]; height: number } {
  const svg = [`<text x="10" y="${top}" font-weight="bold">${escape(phase.name)}: ${phase.requestsPerSecond.toFixed(0)} requests/s</text>`];
  const percentiles: [string, number][] = [['p50', phase.latency.p50], ['p97.5', phase.latency.p97_5], ['p99', phase.latency.p99]];
  percentiles.forEach(([label, value], bar) => {
    const y = top + 10 + bar * 18;
    const length = Math.max(1, (value / maxLatency) * BAR);
    svg.push(`<text x="10" y="${y + 12}">${label}</text><rect x="60" y="${y}" width="${length.toFixed(1)}" height="14" fill="${COLORS[bar]}"/>`);
    svg.push(`<text x="${(66 + length).toFixed(1)}" y="${y + 12}">${value.toFixed(1)} ms</text>`);
  });
  const spread = Object.entries(phase.spread ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const total = spread.reduce((sum, [, count]) => sum + count, 0);
  let x = SPREAD.x;
  spread.forEach(([name, count], slice) => {
    const share = total ? count / total : 0;
    const color = COLORS[slice % COLORS.length];
    svg.push(`<rect x="${x.toFixed(1)}" y="${top + 10}" width="${(share * SPREAD.width).toFixed(1)}" height="30" fill="${color}"/>`);
    // The legend starts at the bar's left edge whatever the slice: at the slice, the last one's
    // label would run past the picture's right edge.
    const y = top + 50 + slice * 16;
    svg.push(`<rect x="${SPREAD.x}" y="${y}" width="10" height="10" fill="${color}"/>`);
    svg.push(`<text x="${SPREAD.x + 16}" y="${y + 10}">${escape(name)} ${count} (${(share * 100).toFixed(1)}%)</text>`);
    x += share * SPREAD.width;
  });
  return { svg, height: 36 + Math.max(64, 54 + spread.length * 16) };
}

export function loadtestSvg(phases: PhaseFigures[], failures: Failure[] = []): string {
  const maxLatency = Math.max(1, ...phases.map((phase) => phase.latency.p99));
  const parts: string[] = [];
  let top = 40;
  for (const { phase, error } of failures) {
    parts.push(`<text x="10" y="${top}" fill="#e15759">${escape(clip(`FAILED ${phase}: ${error}`))}</text>`);
    top += 18;
  }
  if (failures.length) top += 18;
  for (const phase of phases) {
    const row = phaseRow(phase, top, maxLatency);
    parts.push(...row.svg);
    top += row.height;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top - 20}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="18" font-size="14">Load test: latency percentiles (left, same scale) and how requests spread (right)</text>
${parts.join('\n')}
</svg>
`;
}
