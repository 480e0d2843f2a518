/**
 * A websocket client of `GET /api/events` (a real undici WebSocket) that keeps every message it
 * gets: for the event-stream tests (tests/integration/events.test.ts, tests/security/*).
 */
import { WebSocket } from 'undici';

export type EventMessage = Record<string, unknown> & { type: string };

export class EventClient {
  readonly messages: EventMessage[] = [];
  closed = false;
  private constructor(readonly ws: WebSocket) {}

  /** Opens; rejects with the reason when the upgrade is refused. */
  static open(url: string, token: string | null, via: 'header' | 'query' = 'header'): Promise<EventClient> {
    const target = via === 'query' && token ? `${url}?token=${encodeURIComponent(token)}` : url;
    const init = via === 'header' && token ? { headers: { authorization: `Bearer ${token}` } } : {};
    const ws = new WebSocket(target, init as unknown as string[]);
    const c = new EventClient(ws);
    ws.addEventListener('message', (ev) => c.messages.push(JSON.parse(String(ev.data)) as EventMessage));
    ws.addEventListener('close', () => (c.closed = true));
    return new Promise((ok, fail) => {
      ws.addEventListener('open', () => ok(c));
      ws.addEventListener('error', () => fail(new Error('refused')));
    });
  }

  send(subscribe: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ subscribe }));
  }

  /** Waits for a message matching `pred` (among those received so far or later). */
  async waitFor(pred: (m: EventMessage) => boolean, ms = 15_000): Promise<EventMessage> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.messages.find(pred);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no such message; got ${JSON.stringify(this.messages)}`);
      await new Promise((ok) => setTimeout(ok, 20));
    }
  }

  /** Subscribes and waits for the acknowledgement. */
  async subscribe(subscribe: Record<string, unknown>): Promise<EventMessage> {
    const n = this.messages.length;
    this.send(subscribe);
    return this.waitFor((m) => this.messages.indexOf(m) >= n && (m.type === 'subscribed' || m.type === 'error'));
  }

  /** The job events received (of job `id` only, when given). */
  jobEvents(id?: number): EventMessage[] {
    return this.messages.filter((m) => m.type === 'job' && (id === undefined || m['id'] === id));
  }

  /** The ids of the jobs it received events of, ascending. */
  jobIds(): number[] {
    return [...new Set(this.jobEvents().map((m) => m['id'] as number))].sort((a, b) => a - b);
  }

  close(): void {
    this.ws.close();
  }
}
