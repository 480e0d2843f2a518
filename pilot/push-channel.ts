/**
 * The pilot's websocket: the services push commands for its jobs (a kill reaches the payload at
 * once, not on the next heartbeat) and a nudge when new work arrives (an idle pilot asks at once
 * instead of at the end of its back-off). Reconnects while the pilot runs; when the socket is
 * down, heartbeats still carry the commands.
 */
import { WebSocket } from 'undici';
import type { JobCommand, PilotPush } from '../core/pilot-protocol.js';

export interface PushHandlers {
  commands(commands: JobCommand[]): void;
  work(): void;
  log(message: string): void;
}

export class PushChannel {
  private socket: WebSocket | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  private failures = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly on: PushHandlers,
  ) {}

  open(): void {
    if (this.closed) return;
    const url = `${this.baseUrl.replace(/^http/, 'ws')}/api/pilots/self/ws`;
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` } } as unknown as string[]);
    this.socket = socket;
    socket.addEventListener('open', () => {
      if (this.failures > 0) this.on.log('push channel: connected again');
      this.failures = 0;
    });
    socket.addEventListener('message', (ev) => {
      try {
        const msg = JSON.parse(String(ev.data)) as PilotPush;
        if (msg.type === 'commands') this.on.commands(msg.commands);
        else if (msg.type === 'work') this.on.work();
      } catch (e) {
        this.on.log(`push channel: unreadable message (${(e as Error).message})`);
      }
    });
    socket.addEventListener('close', () => {
      this.socket = null;
      if (this.closed) return;
      this.failures++;
      if (this.failures === 1) this.on.log('push channel: closed; commands come with heartbeats until it is back');
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6));
      this.retry = setTimeout(() => this.open(), delay);
      this.retry.unref();
    });
    socket.addEventListener('error', () => undefined); // followed by close
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.socket?.close();
  }
}
