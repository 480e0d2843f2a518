/**
 * The root logger of a server process (pino): one per process, made where the server starts
 * (`startServer`, `startSystem`, `startAgents`), handed to fastify as its logger instance and to
 * the agent runner, whose agents log through `child({ agent })`. One process, one format on
 * stderr: JSON lines (what log collectors read), or pino-pretty's lines when stderr is a
 * terminal (a person reads them).
 *
 * Environment (read here, not in the config file: how lines look is the terminal's business):
 * - `WMS_LOG_FORMAT=json|pretty` forces the format (default: pretty on a TTY, else JSON).
 * The level is the config's `logLevel` (`WMS_LOG_LEVEL`, `--log-level`).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { WmsError } from '../core/errors.js';
import { logSafeError } from './plugins/errors.js';

export type { Logger };

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where log lines go instead of stderr (tests capture them). */
export interface LogStream {
  write(line: string): void;
}

/** The format of `WMS_LOG_FORMAT`, else pretty when stderr is a terminal, else JSON. */
export function logFormatOf(env: NodeJS.ProcessEnv = process.env, tty = process.stderr.isTTY === true): LogFormat {
  const forced = env['WMS_LOG_FORMAT'];
  if (forced === undefined || forced === '') return tty ? 'pretty' : 'json';
  if (!(LOG_FORMATS as readonly string[]).includes(forced)) {
    throw new WmsError('WMS_CONFIG', `WMS_LOG_FORMAT: "${forced}" is not one of ${LOG_FORMATS.join(', ')}`);
  }
  return forced as LogFormat;
}

/**
 * The root logger: at `level`, errors serialized by `logSafeError` (no SQL parameters, every
 * text cut short); to `stream` as JSON when given, else to stderr in `logFormatOf()`'s format.
 * Writes are synchronous: a line logged just before the process exits is not lost.
 */
export function createRootLogger(o: { level: string; stream?: LogStream; format?: LogFormat }): Logger {
  const options = { level: o.level, serializers: { err: (e: unknown) => logSafeError(e) } };
  if (o.stream) return pino(options, o.stream);
  const format = o.format ?? logFormatOf();
  if (format === 'pretty') {
    return pino(
      options,
      pretty({
        destination: 2,
        sync: true,
        colorize: process.stderr.isTTY === true,
        // "[stalled-jobs] nothing stalled": who speaks first, as on one line of plain text.
        messageFormat: '{if agent}[{agent}] {end}{if component}[{component}] {end}{msg}',
        ignore: 'pid,hostname,agent,component,durationMs',
      }),
    );
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** A logger that writes nothing (tests, and callers that asked for no logging). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
