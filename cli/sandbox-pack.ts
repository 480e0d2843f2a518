/**
 * Packs the local InputSandbox files of one JDL into one tar.gz, as DIRAC does: each file (or
 * directory, recursively) goes in under its base name, so the job finds it in its working
 * directory. Relative paths are read relative to the JDL file's directory.
 */
import { mkdir, mkdtemp, realpath, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { create as tarCreate } from 'tar';
import { sha256File } from '../io/file-hash.js';
import { CliError } from './errors.js';

export interface PackedSandbox {
  path: string;
  sha256: string;
  size: number;
  /** Removes the archive and its staging directory. */
  cleanup(): Promise<void>;
}

/**
 * Packs `entries` (as written in the JDL `jdlFile`) into a temporary tar.gz. A missing file
 * is a CliError naming it and the JDL; so are two entries with the same base name.
 */
export async function packInputSandbox(jdlFile: string, baseDir: string, entries: string[]): Promise<PackedSandbox> {
  const work = await mkdtemp(join(tmpdir(), 'wms-sandbox-'));
  const stage = join(work, 'stage');
  const cleanup = () => rm(work, { recursive: true, force: true });
  try {
    await mkdir(stage);
    const names = new Map<string, string>();
    for (const entry of entries) {
      if (/%(\(|[snj%])/.test(entry)) {
        throw new CliError(
          `${jdlFile}: InputSandbox entry "${entry}" holds a placeholder; local files cannot depend on parameters (list each file, or upload them and use SB:<sha256>)`,
        );
      }
      const source = resolve(baseDir, entry);
      try {
        await stat(source);
      } catch {
        throw new CliError(`${jdlFile}: InputSandbox file "${entry}" not found (looked for ${source})`);
      }
      const name = basename(source);
      const other = names.get(name);
      if (other !== undefined) {
        throw new CliError(`${jdlFile}: InputSandbox entries "${other}" and "${entry}" have the same name ${name}`);
      }
      names.set(name, entry);
      await symlink(await realpath(source), join(stage, name));
    }
    const path = join(work, 'sandbox.tar.gz');
    await tarCreate({ gzip: true, cwd: stage, file: path, follow: true, portable: true }, [...names.keys()]);
    const size = (await stat(path)).size;
    return { path, sha256: await sha256File(path), size, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
