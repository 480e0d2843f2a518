/**
 * Sandboxes in the database: several owners per archive, owner checks, which job uses which
 * archive; and pingDb.
 */
import { beforeEach, expect, it } from 'vitest';
import {
  assignSandboxes,
  getSandbox,
  jobUsesSandbox,
  openDb,
  pingDb,
  recordSandbox,
  sandboxesOwnedBy,
  sandboxOwnedBy,
  submitJobs,
} from '../../db/index.js';
import { describeDb } from '../helpers/db.js';
import { makeJob } from './fixtures.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const NONE = 'f'.repeat(64);

describeDb('sandboxes: owners and job links', (ctx) => {
  beforeEach(() => ctx.truncate());

  const record = (sha256: string, owner: string, ownerGroup = 'users', vo = 'vo1') =>
    recordSandbox(ctx.handle, { sha256, size: 10, owner, ownerGroup, vo });
  const vo1 = (owner: string) => ({ owner, vo: 'vo1' });

  it('identical bytes uploaded by two users: one archive, two owners; a third user owns nothing', async () => {
    await record(A, 'alice');
    const first = await getSandbox(ctx.handle, A);
    await record(A, 'bob', 'prod', 'vo2');
    await record(A, 'alice'); // again: idempotent
    expect(await ctx.handle.query('select sha256, owner, owner_group, vo from sandbox_owners order by owner')).toEqual([
      { sha256: A, owner: 'alice', owner_group: 'users', vo: 'vo1' },
      { sha256: A, owner: 'bob', owner_group: 'prod', vo: 'vo2' },
    ]);
    const again = await getSandbox(ctx.handle, A);
    expect(again).toEqual({ sha256: A, size: 10, createdAt: first!.createdAt, lastAccessAt: expect.any(Date) });
    expect(again!.lastAccessAt.getTime()).toBeGreaterThanOrEqual(first!.lastAccessAt.getTime());

    expect(await sandboxOwnedBy(ctx.handle, A, vo1('alice'))).toBe(true);
    expect(await sandboxOwnedBy(ctx.handle, A, { owner: 'bob', vo: 'vo2' })).toBe(true);
    expect(await sandboxOwnedBy(ctx.handle, A, vo1('carol'))).toBe(false);
    expect(await sandboxOwnedBy(ctx.handle, NONE, vo1('alice'))).toBe(false);
  });

  it('an owner is (VO, user): the same name in another VO owns nothing until it uploads the bytes too', async () => {
    await record(A, 'alice', 'users', 'atlas');
    expect(await sandboxOwnedBy(ctx.handle, A, { owner: 'alice', vo: 'atlas' })).toBe(true);
    expect(await sandboxOwnedBy(ctx.handle, A, { owner: 'alice', vo: 'lhcb' })).toBe(false);
    expect(await sandboxesOwnedBy(ctx.handle, [A], { owner: 'alice', vo: 'lhcb' })).toEqual([]);
    // alice of lhcb uploads the same bytes: a second owner row, not a conflict with atlas's.
    await record(A, 'alice', 'lhcb_user', 'lhcb');
    expect(await ctx.handle.query('select owner, owner_group, vo from sandbox_owners order by vo')).toEqual([
      { owner: 'alice', owner_group: 'users', vo: 'atlas' },
      { owner: 'alice', owner_group: 'lhcb_user', vo: 'lhcb' },
    ]);
    expect(await sandboxOwnedBy(ctx.handle, A, { owner: 'alice', vo: 'lhcb' })).toBe(true);
  });

  it('sandboxesOwnedBy answers the owned subset in input order', async () => {
    await record(A, 'alice');
    await record(B, 'alice');
    await record(B, 'bob');
    expect(await sandboxesOwnedBy(ctx.handle, [NONE, B, A], vo1('alice'))).toEqual([B, A]);
    expect(await sandboxesOwnedBy(ctx.handle, [A, B, NONE], vo1('bob'))).toEqual([B]);
    expect(await sandboxesOwnedBy(ctx.handle, [A], vo1('carol'))).toEqual([]);
    expect(await sandboxesOwnedBy(ctx.handle, [], vo1('alice'))).toEqual([]);
  });

  it('recordSandbox inside a transaction rolls back with it', async () => {
    await expect(
      ctx.db.transaction(async (tx) => {
        await recordSandbox(tx, { sha256: A, size: 1, owner: 'alice', ownerGroup: 'users', vo: 'vo1' });
        expect(await sandboxOwnedBy(tx, A, vo1('alice'))).toBe(true);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await getSandbox(ctx.handle, A)).toBeNull();
    expect(await sandboxOwnedBy(ctx.handle, A, vo1('alice'))).toBe(false);
  });

  it('jobUsesSandbox: input or output links of that job only', async () => {
    await record(A, 'alice');
    await record(B, 'alice');
    const [withInput, withOutput, other] = (await submitJobs(ctx.handle, [makeJob(), makeJob(), makeJob()], {
      inputSandboxes: [[A], [], []],
    })) as [number, number, number];
    await assignSandboxes(ctx.handle, withOutput, 'Output', [B]);

    expect(await jobUsesSandbox(ctx.handle, withInput, A)).toBe(true);
    expect(await jobUsesSandbox(ctx.handle, withInput, B)).toBe(false);
    expect(await jobUsesSandbox(ctx.handle, withOutput, B)).toBe(true);
    expect(await jobUsesSandbox(ctx.handle, withOutput, A)).toBe(false);
    expect(await jobUsesSandbox(ctx.handle, other, A)).toBe(false);
    expect(await jobUsesSandbox(ctx.handle, 999_999, A)).toBe(false);
    expect(await jobUsesSandbox(ctx.handle, withInput, NONE)).toBe(false);
    // With a job token's claims: only when the job is that (VO, user)'s.
    expect(await jobUsesSandbox(ctx.handle, withInput, A, vo1('alice'))).toBe(true);
    expect(await jobUsesSandbox(ctx.handle, withInput, A, { owner: 'alice', vo: 'vo2' })).toBe(false);
    expect(await jobUsesSandbox(ctx.handle, withInput, A, vo1('bob'))).toBe(false);
  });

  it("submitJobs: a job may use only its owner's (VO, user) sandboxes, unless sandboxAccess is 'any'", async () => {
    await record(A, 'alice', 'users', 'vo2');
    // makeJob's owner is alice of vo1: A belongs to alice of vo2.
    await expect(submitJobs(ctx.handle, [makeJob()], { inputSandboxes: [[A]] })).rejects.toMatchObject({
      code: 'WMS_SANDBOX_NOT_FOUND',
      message: expect.stringContaining(`SB:${A}`),
    });
    await expect(submitJobs(ctx.handle, [makeJob()], { inputSandboxes: [[NONE]], sandboxAccess: 'any' })).rejects.toMatchObject({
      code: 'WMS_SANDBOX_NOT_FOUND',
    });
    expect(await ctx.handle.query('select id from jobs')).toEqual([]);
    const [own] = await submitJobs(ctx.handle, [makeJob({ requirements: { vo: 'vo2' } })], { inputSandboxes: [[A]] });
    const [admins] = await submitJobs(ctx.handle, [makeJob({ requirements: { owner: 'root' } })], {
      inputSandboxes: [[A]],
      sandboxAccess: 'any',
    });
    expect(await jobUsesSandbox(ctx.handle, own!, A)).toBe(true);
    expect(await jobUsesSandbox(ctx.handle, admins!, A)).toBe(true);
  });
});

describeDb('pingDb', (ctx) => {
  it('resolves when the database answers, on a handle or in a transaction', async () => {
    await expect(pingDb(ctx.handle)).resolves.toBeUndefined();
    await expect(pingDb(ctx.db)).resolves.toBeUndefined();
    await ctx.db.transaction(async (tx) => {
      await pingDb(tx);
    });
  });

  it('throws WMS_DB_UNAVAILABLE (retryable) when it does not', async () => {
    // A closed handle of the suite's driver (on PGlite a separate one: the suite's is shared).
    const gone = ctx.driver === 'pg' ? await ctx.open({ poolSize: 1 }) : await openDb('memory://', { migrate: false });
    await gone.close();
    const err = await pingDb(gone).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'WMS_DB_UNAVAILABLE', retryable: true });
    expect((err as Error).cause).toBeDefined();
  });
});
