/**
 * `wms sandbox put FILE...` packs files into one tar.gz and uploads it (prints `SB:<sha256>` to
 * write in a JDL); `wms sandbox get SHA256 [-o FILE]` downloads an archive.
 */
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { clientFrom, str, type CommandSpec } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { packInputSandbox } from '../sandbox-pack.js';
import { clientCommand, printAnswer } from './client-command.js';

const put = clientCommand({
  name: ['sandbox', 'put'],
  usage: 'FILE...',
  summary: 'pack files into one tar.gz, upload it, print SB:<sha256>',
  positionals: [1, Infinity],
  async run(values, files, io) {
    const client = clientFrom(io);
    const packed = await packInputSandbox('wms sandbox put', io.cwd, files);
    try {
      const r = await client.uploadSandbox(packed.sha256, packed.path, packed.size);
      printAnswer(io, values, { ...r, reference: `SB:${r.sha256}` }, (a) => a.reference);
    } finally {
      await packed.cleanup();
    }
    return 0;
  },
});

const get = clientCommand({
  name: ['sandbox', 'get'],
  usage: 'SHA256 [-o FILE]',
  json: false,
  summary: 'download a sandbox archive (default file: <sha256>.tar.gz)',
  options: { output: { type: 'string', short: 'o', value: 'FILE', description: 'where to write it ("-": stdout)' } },
  positionals: [1, 1],
  async run(values, positionals, io) {
    const sha = (positionals[0] ?? '').replace(/^SB:/i, '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new UsageError(`"${positionals[0]}" is not a SHA-256`);
    const out = str(values, 'output') ?? `${sha}.tar.gz`;
    const body = await clientFrom(io).downloadSandbox(sha);
    if (out === '-') {
      await pipeline(body, process.stdout);
      return 0;
    }
    try {
      await pipeline(body, createWriteStream(resolve(io.cwd, out)));
    } catch (e) {
      throw new CliError(`${out}: cannot write (${(e as Error).message})`);
    }
    io.err(`wrote ${out}`);
    return 0;
  },
});

export const sandboxCommands: CommandSpec[] = [put, get];
