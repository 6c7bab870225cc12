// Node side of a finished run (bench/node.ts, bench/chrome.ts): print the
// tables, write <stem>.{json,md,svg} when asked, and pick the exit code
// (1 when a check failed: any library when strict, otherwise only ours).
import fs from 'node:fs';
import path from 'node:path';
import { isFailure, type BenchReport } from './run';
import { resultStem, toMarkdown, toSvg } from './report';

export function finishRun(report: BenchReport, dir: string | null, strict: boolean): number {
  const mdText = toMarkdown(report);
  console.log(`\n${mdText}`);
  if (dir) {
    fs.mkdirSync(dir, { recursive: true });
    const stem = path.join(dir, resultStem(report));
    fs.writeFileSync(`${stem}.json`, JSON.stringify(report, null, 2) + '\n');
    fs.writeFileSync(`${stem}.md`, mdText);
    fs.writeFileSync(`${stem}.svg`, toSvg(report));
    console.log(`wrote ${stem}.{json,md,svg}`);
  }
  const failedOurs = report.rows.filter((r) => r.lib === 'ours' && isFailure(r)).length;
  console.log(`${report.passed} passed, ${report.failed} failed`);
  return report.failed > 0 && (strict || failedOurs > 0) ? 1 : 0;
}
