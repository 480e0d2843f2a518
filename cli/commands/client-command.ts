/**
 * What the client commands share, said once: each reads the client's environment (CLIENT_ENV,
 * listed in its help) and most take `--json`, printing the API's answer as it came with it and
 * as text for people without it. `clientCommand` adds the shared parts to a spec;
 * `answerCommand` is the whole of a command that asks the API one thing and prints the answer.
 */
import { CLIENT_ENV, clientFrom, flag, JSON_OPTION, type CommandSpec, type Io, type OptionSpec, type OptionValues } from '../command.js';
import { json } from '../output.js';

/** A client command's spec without what `clientCommand` adds. */
export interface ClientCommandSpec extends Omit<CommandSpec, 'options' | 'env'> {
  /** Its own options (`--json` is added after them unless `json` is false). */
  options?: Record<string, OptionSpec>;
  /** Environment variables it reads besides CLIENT_ENV. */
  env?: Readonly<Record<string, string>>;
  /** False for a command without `--json` (its output is not an API answer). */
  json?: boolean;
}

/** The spec of a client command: CLIENT_ENV in its help, `--json` in its options and usage. */
export function clientCommand(spec: ClientCommandSpec): CommandSpec {
  const { json: withJson = true, options = {}, env = {}, ...rest } = spec;
  return {
    ...rest,
    usage: withJson ? `${spec.usage} [--json]`.trimStart() : spec.usage,
    options: withJson ? { ...options, json: JSON_OPTION } : options,
    env: { ...CLIENT_ENV, ...env },
  };
}

/** Prints an API answer: as JSON with `--json`, else as `text(answer)`. */
export function printAnswer<T>(io: Io, values: OptionValues, answer: T, text: (answer: T) => string): void {
  io.out(flag(values, 'json') ? json(answer) : text(answer));
}

/** A command that GETs one answer and prints it (`--json`: as it came). */
export interface AnswerCommandSpec<T> extends Omit<ClientCommandSpec, 'run' | 'json'> {
  /** The path to GET; throws a UsageError for arguments it cannot use. */
  path(positionals: string[], values: OptionValues): string;
  /** The answer as text for people. */
  text(answer: T): string;
}

export function answerCommand<T>(spec: AnswerCommandSpec<T>): CommandSpec {
  const { path, text, ...rest } = spec;
  return clientCommand({
    ...rest,
    async run(values, positionals, io) {
      const answer = await clientFrom(io).json<T>('GET', path(positionals, values));
      printAnswer(io, values, answer, text);
      return 0;
    },
  });
}
