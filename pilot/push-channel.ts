/**
 * The pilot's websocket: the services push commands for its jobs (a kill reaches the payload at
 * once, not on the next heartbeat) and a nudge when new work arrives (an idle pilot asks at once
 * instead of at the end of its back-off). Reconnects while the pilot runs; when the socket is
 * down, heartbeats still carry the commands.
 *
 * Each connection authenticates with the pilot's current token (`token` may be a getter: the
 * pilot's short-lived token is renewed while it runs). The services close a socket when the
 * token that opened it expires; the channel then reconnects at once with the current one.
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

  private readonly tokenOf: () => string;

  constructor(
    private readonly baseUrl: string,
    token: string | (() => string),
    private readonly on: PushHandlers,
  ) {
    this.tokenOf = typeof token === 'string' ? () => token : token;
  }

  open(): void {
    if (this.closed) return;
    const url = `${this.baseUrl.replace(/^http/, 'ws')}/api/pilots/self/ws`;
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.tokenOf()}` } } as unknown as string[]);
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
    socket.addEventListener('close', (ev) => {
      this.socket = null;
      if (this.closed) return;
      if (ev.code === 4401 && this.failures === 0) {
        // The services closed it because its token expired: reconnect now with the current one.
        this.failures = 0;
        this.retry = setTimeout(() => this.open(), 50);
        this.retry.unref();
        return;
      }
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
