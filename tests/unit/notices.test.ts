/**
 * The notice bus's encoding and checks (db/notices.ts) and its in-process variant: long id lists
 * split under PostgreSQL's 8000-byte payload limit, every payload that is not a notice refused,
 * each notice delivered once to each subscriber (a failing subscriber does not stop the others).
 */
import { describe, expect, it } from 'vitest';
import { encodeNotice, localNoticeBus, MAX_IDS_PER_NOTICE, parseNotice, type Notice } from '../../db/notices.js';

const BIG = Number.MAX_SAFE_INTEGER;

describe('notice encoding', () => {
  it('splits long id lists into payloads under 8000 bytes that read back whole', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => BIG - i);
    const payloads = encodeNotice({ kind: 'jobs-changed', action: 'kill', ids });
    expect(payloads).toHaveLength(Math.ceil(1000 / MAX_IDS_PER_NOTICE));
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    const back = payloads.map(parseNotice).flatMap((n) => (n?.kind === 'jobs-changed' ? n.ids : []));
    expect(back).toEqual(ids);
  });

  it('reads back every kind of notice; sends nothing for an empty list', () => {
    const notices: Notice[] = [
      { kind: 'jobs-changed', action: 'delete', ids: [1, 2] },
      { kind: 'work', taskQueues: [7] },
      { kind: 'pilots-changed', ids: [3] },
      { kind: 'sites-changed' },
    ];
    for (const n of notices) expect(encodeNotice(n).map(parseNotice)).toEqual([n]);
    expect(encodeNotice({ kind: 'work', taskQueues: [] })).toEqual([]);
  });

  it('refuses whatever is not a notice', () => {
    for (const bad of [
      undefined,
      42,
      '',
      'not json',
      'null',
      '[]',
      '{}',
      '{"kind":"explode"}',
      '{"kind":"jobs-changed","action":"kill"}',
      '{"kind":"jobs-changed","action":"drop","ids":[1]}',
      '{"kind":"jobs-changed","action":"kill","ids":[0]}',
      '{"kind":"jobs-changed","action":"kill","ids":[1.5]}',
      '{"kind":"jobs-changed","action":"kill","ids":["1"]}',
      '{"kind":"jobs-changed","action":"kill","ids":[9007199254740992]}',
      '{"kind":"work","taskQueues":[]}',
      '{"kind":"work","taskQueues":{"0":1,"length":1}}',
      `{"kind":"pilots-changed","ids":[${Array.from({ length: MAX_IDS_PER_NOTICE + 1 }, (_, i) => i + 1).join(',')}]}`,
      '{"__proto__":{"kind":"sites-changed"}}',
      `"${'x'.repeat(9000)}"`,
    ]) {
      expect(parseNotice(bad), String(bad).slice(0, 80)).toBeNull();
    }
  });
});

describe('in-process bus', () => {
  it('delivers each notice once to each subscriber, after publish returns', async () => {
    const bus = localNoticeBus();
    const got: Notice[] = [];
    bus.subscribe(() => {
      throw new Error('a broken subscriber');
    });
    const off = bus.subscribe((n) => got.push(n));
    await bus.publish({ kind: 'work', taskQueues: [1, 2] });
    expect(got).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([{ kind: 'work', taskQueues: [1, 2] }]);
    off();
    await bus.publish({ kind: 'sites-changed' });
    await new Promise((r) => setImmediate(r));
    expect(got).toHaveLength(1);
    expect(bus.stats).toMatchObject({ published: 2, received: 2, ignored: 0 });
    await bus.close();
  });
});
