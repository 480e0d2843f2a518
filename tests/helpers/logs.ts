/**
 * Capturing what the server's pino loggers write: `captureLogger()` gives a logger whose JSON
 * lines are kept in memory, parsed; `messages` is their `msg` fields in order (what a test that
 * read the plain-text log before checks now).
 */
import { pino, type Logger } from 'pino';

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface CapturedLogs {
  logger: Logger;
  records: LogRecord[];
  /** The `msg` of every line so far. */
  messages(): string[];
}

/** A logger at `level` whose lines are kept (and handed to `onRecord` as they come). */
export function captureLogger(o: { level?: string; onRecord?: (r: LogRecord) => void } = {}): CapturedLogs {
  const records: LogRecord[] = [];
  const write = (line: string) => {
    const r = JSON.parse(line) as LogRecord;
    records.push(r);
    o.onRecord?.(r);
  };
  const logger = pino({ level: o.level ?? 'info' }, { write });
  return { logger, records, messages: () => records.map((r) => r.msg) };
}
