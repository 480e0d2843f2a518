/**
 * Scenario `db12`: the pilot's DB12 in Node (pilot/commands/db12.ts) against DIRAC's algorithm
 * in CPython (benchmarks/lib/db12_reference.py) on this machine, run alternately so that both
 * see the same machine state. Reports each run, the medians and the ratio of our calibrated
 * score to the Python score. Headline: that ratio with one copy. Target: every ratio within
 * 0.9–1.1, i.e. the calibration constant puts our score on DIRAC's scale within 10 %.
 *
 * `suggestedCalibration` is the constant that would have made the one-copy medians equal; when
 * the headline drifts out of range on the reference machine, that is the value to put in
 * `DB12_CALIBRATION`.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DB12_CALIBRATION, runDb12 } from '../pilot/commands/db12.js';
import type { BenchOptions, BenchResult } from './run.js';

const SIZES = {
  smoke: [{ copies: 1, rounds: 1 }],
  full: [
    { copies: 1, rounds: 5 },
    { copies: 2, rounds: 3 },
  ],
};

const REFERENCE = fileURLToPath(new URL('./lib/db12_reference.py', import.meta.url));

interface PythonDb12 {
  NORM: number;
  CPU: number;
  WALL: number;
  copies: number;
  raw: number[];
  python: string;
}

/** Runs the CPython reference with `copies` processes and returns its JSON line. */
function runPython(copies: number): Promise<PythonDb12> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [REFERENCE, '--copies', String(copies)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => reject(new Error(`cannot run python3: ${e.message}`)));
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`python3 ${REFERENCE} exited with ${code}: ${err.trim().split('\n').pop() ?? ''}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as PythonDb12);
      } catch {
        reject(new Error(`python3 ${REFERENCE} printed no JSON line: ${out.slice(0, 200)}`));
      }
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const r2 = (x: number) => Math.round(x * 100) / 100;
const r4 = (x: number) => Math.round(x * 10_000) / 10_000;

/** One configuration: `rounds` alternating pairs; who goes first alternates too. */
async function compare(copies: number, rounds: number) {
  const node: { score: number; raw: number[]; cpuSeconds: number[]; method: string }[] = [];
  const python: { norm: number; raw: number[]; cpuSeconds: number }[] = [];
  let pythonVersion = '';
  for (let i = 0; i < rounds; i++) {
    const runNode = async () => {
      const r = await runDb12({ copies });
      node.push({ score: r.score, raw: r.raw, cpuSeconds: r.cpuSeconds, method: `${r.method}/${r.cpuClock}` });
    };
    const runPy = async () => {
      const p = await runPython(copies);
      pythonVersion = p.python;
      python.push({ norm: r2(p.NORM), raw: p.raw.map(r2), cpuSeconds: r2(p.CPU) });
    };
    if (i % 2 === 0) {
      await runNode();
      await runPy();
    } else {
      await runPy();
      await runNode();
    }
    console.error(
      `db12: copies=${copies} round ${i + 1}/${rounds}: node ${node.at(-1)!.score} (raw ${node.at(-1)!.raw.join(', ')}), ` +
        `python ${python.at(-1)!.norm} (raw ${python.at(-1)!.raw.join(', ')})`,
    );
  }
  const nodeMedian = median(node.map((n) => n.score));
  const nodeRawMedian = median(node.map((n) => n.raw[0]!));
  const pythonMedian = median(python.map((p) => p.norm));
  return {
    copies,
    rounds,
    node,
    python,
    nodeMedian: r2(nodeMedian),
    nodeRawMedian: r2(nodeRawMedian),
    pythonMedian: r2(pythonMedian),
    ratio: r4(nodeMedian / pythonMedian),
    /** Python median / Node raw median: the constant that would give a ratio of 1. */
    suggestedCalibration: r4(pythonMedian / nodeRawMedian),
    pythonVersion,
  };
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const configs = [];
  for (const c of SIZES[opts.size]) configs.push(await compare(c.copies, c.rounds));
  const headline = configs[0]!;
  const inRange = configs.every((c) => c.ratio >= 0.9 && c.ratio <= 1.1);
  return {
    scenario: 'db12',
    size: opts.size,
    headline: { name: 'node DB12 / python DB12 (median, 1 copy)', value: headline.ratio, unit: 'ratio' },
    target: { ratio: [0.9, 1.1], met: inRange },
    calibration: DB12_CALIBRATION,
    suggestedCalibration: headline.suggestedCalibration,
    configs,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length },
    node: process.version,
    python: headline.pythonVersion,
  };
}
