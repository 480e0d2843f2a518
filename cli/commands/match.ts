/**
 * `wms match explain`: for a resource description (what a pilot at a site would offer), each
 * task queue the matcher considers and why it is rejected. The resource comes from flags or
 * from a JSON file (`--file`, `-` for stdin) with the fields of `POST /api/match`.
 */
import type { ExplainResource } from '../../api/index.js';
import { clientFrom, int, readTextFile, str, strs, type CommandSpec } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { clientCommand, printAnswer } from './client-command.js';
import { formatExplainResource } from './explain-format.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const explain = clientCommand({
  name: ['match', 'explain'],
  usage:
    '--site S --cpu-work N [--ce C] [--queue Q] [--platform P] [--tag T]... [--processors N] [--ram-mb N] [--gpus N] [--vo V] | --file FILE',
  summary: 'which task queues a resource would be offered, and why the others are rejected',
  details: 'For one job, use "wms job explain ID".',
  options: {
    site: { type: 'string', value: 'S', description: 'site of the resource' },
    'cpu-work': { type: 'string', value: 'N', description: 'CPU work left: seconds x DB12 (normalized seconds)' },
    ce: { type: 'string', value: 'C', description: 'computing element' },
    queue: { type: 'string', value: 'Q', description: 'batch queue' },
    platform: { type: 'string', value: 'P', description: 'platform' },
    tag: { type: 'string', multiple: true, value: 'T', description: 'a tag offered (repeat)' },
    'required-tag': { type: 'string', multiple: true, value: 'T', description: 'a tag a task queue must carry (repeat)' },
    processors: { type: 'string', value: 'N', description: 'cores (default 1)' },
    'ram-mb': { type: 'string', value: 'N', description: 'memory in MB' },
    gpus: { type: 'string', value: 'N', description: 'GPUs' },
    vo: { type: 'string', value: 'V', description: 'only jobs of VO V' },
    file: { type: 'string', value: 'FILE', description: 'the resource description as JSON ("-": stdin)' },
  },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    let resource: Record<string, unknown>;
    const file = str(values, 'file');
    if (file !== undefined) {
      const text = file === '-' ? await readStdin() : await readTextFile(io, file, 'resource file');
      try {
        resource = JSON.parse(text) as Record<string, unknown>;
      } catch (e) {
        throw new CliError(`${file}: not valid JSON (${(e as Error).message})`);
      }
    } else {
      const site = str(values, 'site');
      const cpuWork = int(values, 'cpu-work', 0);
      if (site === undefined || cpuWork === undefined) throw new UsageError('--site and --cpu-work are required (or --file)');
      resource = { site, cpuWork };
      for (const k of ['ce', 'queue', 'platform', 'vo'] as const) {
        const v = str(values, k);
        if (v !== undefined) resource[k] = v;
      }
      if (strs(values, 'tag').length > 0) resource['tags'] = strs(values, 'tag');
      if (strs(values, 'required-tag').length > 0) resource['requiredTags'] = strs(values, 'required-tag');
      for (const [opt, key] of [
        ['processors', 'processors'],
        ['ram-mb', 'ramMb'],
        ['gpus', 'gpus'],
      ] as const) {
        const v = int(values, opt, 0);
        if (v !== undefined) resource[key] = v;
      }
    }
    const answer = await clientFrom(io).json<ExplainResource>('POST', '/api/match/explain', resource, { idempotent: true }); // a read: retried through outages
    printAnswer(io, values, answer, formatExplainResource);
    return 0;
  },
});

export const matchCommands: CommandSpec[] = [explain];
