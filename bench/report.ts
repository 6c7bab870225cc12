// Rendering a BenchReport: markdown (Node output, bench/results/*.md), HTML
// tables (the browser page) and a hand-written SVG chart. Browser-safe.
import { type BenchReport, type CellInfo, fmtMs, type Row } from './run';

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  note?: string;
}

const OURS = 'ours';

function rowsBy(report: BenchReport): Map<string, Map<string, Row>> {
  const m = new Map<string, Map<string, Row>>();
  for (const r of report.rows) {
    if (!m.has(r.cell)) m.set(r.cell, new Map());
    m.get(r.cell)!.set(r.lib, r);
  }
  return m;
}

function statusText(r: Row | undefined): string {
  if (!r) return '–';
  if (r.status === 'skipped') return 'skipped';
  if (r.status === 'verify-failed') return 'FAIL (verify)';
  if (r.status === 'error') return 'ERROR';
  return '';
}

function fmtRatio(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** "3.20× faster" when the rival takes longer than ours, else "2.10× slower". */
export function ratioText(oursMs: number, rivalMs: number): string {
  const r = rivalMs / oursMs;
  return r >= 1 ? `${fmtRatio(r)}× faster` : `${fmtRatio(1 / r)}× slower`;
}

export function libNames(report: BenchReport): string[] {
  return report.libs.map((l) => l.name);
}

export function timeTable(report: BenchReport): Table {
  const by = rowsBy(report);
  const libs = libNames(report);
  return {
    title: 'Wall time per call, ms: median (min–max)',
    headers: ['workload', ...libs],
    rows: report.cells.map((c) => [
      c.label,
      ...libs.map((l) => {
        const r = by.get(c.id)?.get(l);
        return r?.status === 'ok' ? `${fmtMs(r.medianMs!)} (${fmtMs(r.minMs!)}–${fmtMs(r.maxMs!)})` : statusText(r);
      }),
    ]),
    note: 'Each call is compute + readback of the result; inputs were uploaded before timing. First call (compilation) and warm-up excluded.',
  };
}

export function gflopsTable(report: BenchReport): Table | null {
  const cells = report.cells.filter((c) => c.kind === 'matmul' || c.kind === 'vjp');
  if (!cells.length) return null;
  const by = rowsBy(report);
  const libs = libNames(report);
  return {
    title: 'Matmul throughput, GFLOP/s at the median time (2n³ per product; VJP 4n³)',
    headers: ['workload', ...libs],
    rows: cells.map((c) => [
      c.label,
      ...libs.map((l) => {
        const r = by.get(c.id)?.get(l);
        return r?.status === 'ok' && r.gflops !== undefined ? r.gflops.toFixed(r.gflops >= 10 ? 1 : 2) : statusText(r);
      }),
    ]),
  };
}

export function ratioTable(report: BenchReport): Table | null {
  const libs = libNames(report);
  if (!libs.includes(OURS)) return null;
  const rivals = libs.filter((l) => l !== OURS);
  if (!rivals.length) return null;
  const by = rowsBy(report);
  const logs = new Map<string, number[]>(rivals.map((l) => [l, []]));
  const rows = report.cells.map((c) => {
    const o = by.get(c.id)?.get(OURS);
    const oursOk = o?.status === 'ok';
    return [
      c.label,
      oursOk ? fmtMs(o.medianMs!) : statusText(o),
      ...rivals.map((l) => {
        const r = by.get(c.id)?.get(l);
        if (!oursOk) return '–';
        if (r?.status !== 'ok') return statusText(r);
        logs.get(l)!.push(Math.log(r.medianMs! / o.medianMs!));
        return ratioText(o.medianMs!, r.medianMs!);
      }),
    ];
  });
  rows.push([
    '**geometric mean**',
    '',
    ...rivals.map((l) => {
      const v = logs.get(l)!;
      if (!v.length) return '–';
      const g = Math.exp(v.reduce((a, b) => a + b, 0) / v.length);
      return `**${ratioText(1, g)}** (${v.length})`;
    }),
  ]);
  return {
    title: 'Ours vs each rival (median time ratio; "faster" = ours is faster)',
    headers: ['workload', 'ours ms', ...rivals.map((l) => `vs ${l}`)],
    rows,
  };
}

export function gpuTimeTable(report: BenchReport): Table | null {
  const rows = report.rows.filter((r) => r.status === 'ok' && r.gpu);
  if (!rows.length) return null;
  const label = new Map(report.cells.map((c) => [c.id, c.label]));
  return {
    title: 'GPU time per call (timestamp queries at the start and end of each compute pass), next to wall time',
    headers: ['workload', 'library', 'wall ms (median)', 'GPU ms (mean)', 'GPU share', 'submissions per call'],
    rows: rows.map((r) => [
      label.get(r.cell) ?? r.cell,
      r.lib,
      fmtMs(r.medianMs!),
      r.gpu!.submissionsPerCall ? fmtMs(r.gpu!.msPerCall) : '– (host)',
      r.gpu!.submissionsPerCall ? `${Math.round((100 * r.gpu!.msPerCall) / r.meanMs!)}%` : '–',
      r.gpu!.submissionsPerCall.toFixed(r.gpu!.submissionsPerCall % 1 ? 2 : 0),
    ]),
    note: 'Only libraries that expose timestamps (ours). "host": the call ran on the host (small-graph evaluation), no submission. GPU share = GPU ms / mean wall ms.',
  };
}

export function mlpTable(report: BenchReport): Table | null {
  const rows = report.rows.filter((r) => r.loss);
  if (!rows.length) return null;
  return {
    title: 'MLP training: loss of the first and last step (all steps checked against float64)',
    headers: ['library', 'steps', 'first loss', 'last loss', 'falls', 'ms/step mean'],
    rows: rows.map((r) => [
      r.lib,
      String(r.loss!.steps),
      r.loss!.first.toFixed(5),
      r.loss!.last.toFixed(5),
      r.loss!.falls ? 'yes' : 'NO',
      r.meanMs !== undefined ? fmtMs(r.meanMs) : '–',
    ]),
  };
}

/** Steps per second of the MLP loop by how often the loss is read: reading less often should never be slower. */
export function loopTable(report: BenchReport): Table | null {
  const cells = report.cells.filter((c) => c.kind === 'loop');
  if (!cells.length) return null;
  const by = rowsBy(report);
  const libs = libNames(report).filter((l) => cells.some((c) => by.get(c.id)?.get(l)?.status === 'ok'));
  return {
    title: 'MLP training loop: steps per second, by how often the loss is read',
    headers: ['library', ...cells.map((c) => (c.readEvery ? `read every ${c.readEvery}` : 'never read'))],
    rows: libs.map((l) => [
      l,
      ...cells.map((c) => {
        const r = by.get(c.id)?.get(l);
        return r?.status === 'ok' ? ((1000 * c.steps!) / r.medianMs!).toFixed(0) : statusText(r);
      }),
    ]),
    note:
      `Each call runs ${cells[0]!.steps} steps of the MLP step above (median call); "never read" waits for the GPU at the end of the call. ` +
      'Every call ends by reading the last loss; the first is checked against float64.',
  };
}

export function tables(report: BenchReport): Table[] {
  return [ratioTable(report), timeTable(report), gflopsTable(report), gpuTimeTable(report), mlpTable(report), loopTable(report)].filter(
    (t): t is Table => !!t,
  );
}

export function deviceText(report: BenchReport): string {
  const d = report.device;
  const parts = [d.vendor, d.architecture, d.description].filter(Boolean).join(' / ');
  return `${parts}${d.isFallback ? ' (software fallback)' : ''}${d.backend ? `, ${d.backend}` : ''}`;
}

export function problems(report: BenchReport): string[] {
  const out: string[] = [];
  for (const l of report.libs) if (l.initError) out.push(`${l.name}: init failed: ${l.initError}`);
  for (const r of report.rows) {
    if (r.status === 'verify-failed' || r.status === 'error') out.push(`${r.lib} / ${r.label}: ${r.status}: ${r.error}`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Markdown

const esc = (s: string) => s.replace(/\|/g, '\\|');

export function tableToMarkdown(t: Table): string {
  const lines = [
    `### ${t.title}`,
    '',
    `| ${t.headers.map(esc).join(' | ')} |`,
    `| ${t.headers.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const r of t.rows) lines.push(`| ${r.map(esc).join(' | ')} |`);
  if (t.note) lines.push('', t.note);
  return lines.join('\n');
}

export function toMarkdown(report: BenchReport): string {
  const o = report.options;
  const optText = [
    o.quick ? 'quick' : 'full',
    o.sizes === 'large' ? 'large sizes' : null,
    o.only ? `only ${o.only.join(',')}` : null,
    `budget ${o.budgetMs} ms/cell`,
    `≤${o.maxReps} reps (≥${o.minReps} unless a call exceeds the budget)`,
    `${o.mlpSteps} timed MLP steps`,
  ]
    .filter(Boolean)
    .join(', ');
  const head = [
    `# gradgpu benchmark — ${report.env}, ${report.date.slice(0, 10)}`,
    '',
    `- date: ${report.date}`,
    `- environment: ${report.env}, ${report.platform}`,
    `- device (ours): ${deviceText(report)}`,
    report.rivalAdapter ? `- device (rivals): ${report.rivalAdapter}` : null,
    `- options: ${optText}`,
    `- verified cells: ${report.passed} passed, ${report.failed} failed; total ${report.totalSeconds.toFixed(0)} s`,
    report.loadAverage
      ? `- machine load (1-min load average, start → end): ${report.loadAverage.map((x) => x.toFixed(2)).join(' → ')} on ${report.platform.match(/(\d+)× /)?.[1] ?? '?'} cores`
      : null,
    report.rows.some((r) => r.gpu)
      ? '- timing: wall clock (performance.now) per call, compute + readback; GPU time from timestamp queries for ours (table below)'
      : '- timing: wall clock (performance.now) per call, compute + readback; GPU timestamp queries not available',
    '',
    '| library | how it is driven |',
    '| --- | --- |',
    ...report.libs.map((l) => `| ${esc(l.name)} | ${esc(l.notes)}${l.initError ? ` (init failed: ${esc(l.initError)})` : ''} |`),
  ].filter((x): x is string => x !== null);
  const probs = problems(report);
  return (
    [head.join('\n'), ...tables(report).map(tableToMarkdown), probs.length ? `### Failures\n\n${probs.map((p) => `- ${p}`).join('\n')}` : '']
      .filter(Boolean)
      .join('\n\n') + '\n'
  );
}

// ---------------------------------------------------------------------------
// HTML (browser page)

const h = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const md = (s: string) => h(s).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>');

export function tableToHtml(t: Table): string {
  const cls = (s: string) =>
    s.includes('faster') ? ' class="win"' : s.includes('slower') ? ' class="loss"' : s.startsWith('FAIL') || s === 'ERROR' ? ' class="fail"' : '';
  return (
    `<h3>${h(t.title)}</h3><table><thead><tr>${t.headers.map((x) => `<th>${h(x)}</th>`).join('')}</tr></thead><tbody>` +
    t.rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th>${md(c)}</th>` : `<td${cls(c)}>${md(c)}</td>`)).join('')}</tr>`).join('') +
    `</tbody></table>${t.note ? `<p class="note">${h(t.note)}</p>` : ''}`
  );
}

// ---------------------------------------------------------------------------
// SVG chart: (1) grouped bars of median ms per workload per library, log
// scale; (2) GFLOP/s against matrix size, one panel per matmul kind.

const PALETTE = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f'];

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

function tickLabel(v: number): string {
  if (v >= 1000) return `${v / 1000}k`.replace('000k', 'M');
  if (v >= 1) return String(v);
  return String(Number(v.toPrecision(1)));
}

export function toSvg(report: BenchReport): string {
  const libs = libNames(report);
  const color = (l: string) => PALETTE[libs.indexOf(l) % PALETTE.length]!;
  const by = rowsBy(report);
  const ok = report.rows.filter((r) => r.status === 'ok' && r.medianMs! > 0);
  const parts: string[] = [];
  const font = 'font-family="system-ui, sans-serif"';

  // ---- chart 1
  const cells = report.cells;
  const barW = 9;
  const groupW = libs.length * barW + 14;
  const left = 60;
  const top = 60;
  const plotH = 280;
  const width = Math.max(940, left + cells.length * groupW + 20);
  const ms = ok.map((r) => r.medianMs!);
  const lo = ms.length ? 10 ** Math.floor(Math.log10(Math.min(...ms))) : 0.01;
  const hi = ms.length ? 10 ** Math.ceil(Math.log10(Math.max(...ms))) : 1000;
  const y = (v: number) => top + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * plotH;
  parts.push(
    `<text x="10" y="20" font-size="15" font-weight="bold" ${font}>gradgpu benchmark — ${h(report.env)}, ${h(report.date.slice(0, 10))}</text>`,
  );
  parts.push(
    `<text x="10" y="36" font-size="11" ${font}>${h(deviceText(report))} · median wall time per call, ms (log scale; lower is better); no bar: failed or skipped</text>`,
  );
  let legendX = left;
  libs.forEach((l) => {
    const x = legendX;
    legendX += 30 + l.length * 6.2;
    parts.push(
      `<rect x="${x}" y="${top - 14}" width="10" height="10" fill="${color(l)}"/><text x="${x + 14}" y="${top - 5}" font-size="11" ${font}>${h(l)}</text>`,
    );
  });
  for (const t of logTicks(lo, hi)) {
    if (t < lo || t > hi) continue;
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${y(t) + 4}" font-size="10" text-anchor="end" ${font}>${tickLabel(t)}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  cells.forEach((c, gi) => {
    const gx = left + 8 + gi * groupW;
    libs.forEach((l, li) => {
      const r = by.get(c.id)?.get(l);
      if (r?.status !== 'ok' || !(r.medianMs! > 0)) return;
      const yy = y(r.medianMs!);
      parts.push(
        `<rect x="${gx + li * barW}" y="${yy.toFixed(1)}" width="${barW - 1}" height="${(top + plotH - yy).toFixed(1)}" fill="${color(l)}"><title>${h(l)} · ${h(c.label)}: ${fmtMs(r.medianMs!)} ms</title></rect>`,
      );
    });
    const lx = gx + (libs.length * barW) / 2;
    parts.push(`<text transform="translate(${lx},${top + plotH + 10}) rotate(40)" font-size="10" ${font}>${h(c.short ?? c.label)}</text>`);
  });
  let yOff = top + plotH + 110;

  // ---- chart 2
  const kinds: { title: string; pick: (c: CellInfo) => boolean }[] = [
    { title: 'matmul n×n', pick: (c: CellInfo) => c.kind === 'matmul' && c.chain === 1 },
    { title: 'chain of 10 matmuls', pick: (c: CellInfo) => c.kind === 'matmul' && (c.chain ?? 1) > 1 },
    { title: 'matmul VJP', pick: (c: CellInfo) => c.kind === 'vjp' },
  ].filter((k) => cells.some(k.pick));
  if (kinds.length) {
    const gf = ok.filter((r) => r.gflops! > 0 && cells.find((c) => c.id === r.cell && (c.kind === 'matmul' || c.kind === 'vjp')));
    const glo = gf.length ? 10 ** Math.floor(Math.log10(Math.min(...gf.map((r) => r.gflops!)))) : 0.1;
    const ghi = gf.length ? 10 ** Math.ceil(Math.log10(Math.max(...gf.map((r) => r.gflops!)))) : 10;
    const panelW = Math.min(300, (width - left - 20) / kinds.length - 50);
    const ph = 200;
    parts.push(`<text x="${left}" y="${yOff - 18}" font-size="12" ${font}>matmul throughput, GFLOP/s (log scale; higher is better) against n</text>`);
    kinds.forEach((k, ki) => {
      const px = left + ki * (panelW + 50);
      const ns = [...new Set(cells.filter(k.pick).map((c) => c.n!))].sort((a, b) => a - b);
      const xOf = (n: number) => (ns.length === 1 ? px + panelW / 2 : px + (Math.log2(n / ns[0]!) / Math.log2(ns[ns.length - 1]! / ns[0]!)) * panelW);
      const yOf = (v: number) => yOff + ph - ((Math.log10(v) - Math.log10(glo)) / (Math.log10(ghi) - Math.log10(glo) || 1)) * ph;
      parts.push(`<text x="${px}" y="${yOff - 4}" font-size="11" font-weight="bold" ${font}>${k.title}</text>`);
      parts.push(`<rect x="${px}" y="${yOff}" width="${panelW}" height="${ph}" fill="none" stroke="#333"/>`);
      for (const t of logTicks(glo, ghi)) {
        if (t < glo || t > ghi) continue;
        parts.push(`<line x1="${px}" x2="${px + panelW}" y1="${yOf(t)}" y2="${yOf(t)}" stroke="#eee"/>`);
        parts.push(`<text x="${px - 4}" y="${yOf(t) + 4}" font-size="10" text-anchor="end" ${font}>${tickLabel(t)}</text>`);
      }
      for (const n of ns) parts.push(`<text x="${xOf(n)}" y="${yOff + ph + 14}" font-size="10" text-anchor="middle" ${font}>${n}</text>`);
      for (const l of libs) {
        const pts = cells
          .filter(k.pick)
          .map((c) => ({ n: c.n!, r: by.get(c.id)?.get(l) }))
          .filter((p) => p.r?.status === 'ok' && p.r.gflops! > 0)
          .map((p) => [xOf(p.n), yOf(p.r!.gflops!), p.r!.gflops!] as const);
        if (!pts.length) continue;
        parts.push(
          `<polyline fill="none" stroke="${color(l)}" stroke-width="2" points="${pts.map(([x, yy]) => `${x.toFixed(1)},${yy.toFixed(1)}`).join(' ')}"/>`,
        );
        for (const [x, yy, g] of pts)
          parts.push(
            `<circle cx="${x.toFixed(1)}" cy="${yy.toFixed(1)}" r="3" fill="${color(l)}"><title>${h(l)}: ${g.toFixed(2)} GFLOP/s</title></circle>`,
          );
      }
    });
    yOff += ph + 40;
  }
  const height = yOff;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`
  );
}

/** File stem for results: <YYYY-MM-DD>-<device-slug>-<env>. */
export function resultStem(report: BenchReport): string {
  const d = report.device;
  const dev = [d.vendor, d.architecture].filter(Boolean).join('-') || d.description || 'unknown-device';
  const devSlug = dev
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${report.date.slice(0, 10)}-${devSlug}-${report.env}${report.options.quick ? '-quick' : ''}`;
}
