/**
 * `wms token issue` and `wms token whoami`.
 *
 * `issue` asks the running server (`POST /api/tokens`, admin token from WMS_TOKEN, the config
 * file or <data-dir>/admin.token). When no server answers, it opens the database itself
 * (`--data-dir`, `--db`, same defaults and env as the server) and signs with the key stored
 * there: the admin bootstrap. Prints the token alone, so `export WMS_TOKEN=$(wms token issue …)`
 * works.
 */
import { isValidName, PERSON_ROLES, type PersonPrincipal, type PersonRole } from '../../core/identity.js';
import { parseDuration } from '../../core/config.js';
import type { TokenAnswer } from '../api-types.js';
import { CLIENT_ENV, clientFrom, flag, JSON_OPTION, str, type CommandSpec } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { json } from '../output.js';
import { SERVER_OPTIONS, serviceConfigFrom } from './server.js';

const issue: CommandSpec = {
  name: ['token', 'issue'],
  usage: '--user U --vo V --group G [--role user|admin|site-admin] [--ttl 30d] [--json]',
  summary: 'issue a token (admins; falls back to the database when no server runs)',
  options: {
    user: { type: 'string', value: 'U', description: 'user name' },
    vo: { type: 'string', value: 'V', description: 'virtual organisation' },
    group: { type: 'string', value: 'G', description: 'group within the VO' },
    role: { type: 'string', value: 'R', description: `${PERSON_ROLES.join(', ')} (default user)` },
    ttl: { type: 'string', value: 'D', description: 'lifetime: 30d, 12h, 90m, 3600 (default 30d)' },
    'data-dir': SERVER_OPTIONS['data-dir'],
    db: SERVER_OPTIONS.db,
    config: SERVER_OPTIONS.config,
    json: JSON_OPTION,
  },
  env: { ...CLIENT_ENV, WMS_DATABASE_URL: 'database for the bootstrap (no server running)' },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const need = (name: string): string => {
      const v = str(values, name);
      if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
      if (!isValidName(v)) throw new UsageError(`--${name}: "${v}" is not a valid name (letters, digits, . _ @ -)`);
      return v;
    };
    const user = need('user');
    const vo = need('vo');
    const group = need('group');
    const role = (str(values, 'role') ?? 'user') as PersonRole;
    if (!(PERSON_ROLES as readonly string[]).includes(role)) {
      throw new UsageError(`--role: "${role}" is not one of ${PERSON_ROLES.join(', ')}`);
    }
    const ttlText = str(values, 'ttl');
    const ttlSeconds = ttlText === undefined ? undefined : parseDuration(ttlText);
    if (ttlSeconds === null) throw new UsageError(`--ttl: "${ttlText}" is not a duration (30d, 12h, 90m, 3600)`);

    // With --data-dir, the admin token of that data directory is the default credential.
    const dataDir = str(values, 'data-dir');
    const clientIo = dataDir === undefined ? io : { ...io, env: { ...io.env, WMS_DATA_DIR: dataDir } };
    let answer: TokenAnswer;
    try {
      answer = await clientFrom(clientIo).json<TokenAnswer>('POST', '/api/tokens', {
        user,
        vo,
        group,
        role,
        ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      });
    } catch (e) {
      if (!(e instanceof CliError) || e.code !== 'UNREACHABLE') throw e;
      // No server: sign from the database directly (admin bootstrap).
      const config = await serviceConfigFrom(values, io);
      const { issueTokenDirect } = await import('../../services/server.js');
      const principal: PersonPrincipal = { role, user, vo, group };
      const ttl = ttlSeconds ?? config.tokens.userTtlSeconds;
      let signed;
      try {
        signed = await issueTokenDirect(config, principal, ttl);
      } catch (err) {
        throw new CliError(
          `no server answers at ${clientFrom(clientIo).url}, and the database cannot be opened (${(err as Error).message})`,
        );
      }
      answer = { token: signed.token, expiresAt: signed.expiresAt.toISOString(), identity: principal };
      io.err('wms: no server answered; token signed from the database directly');
    }
    io.out(flag(values, 'json') ? json(answer) : answer.token);
    return 0;
  },
};

const whoami: CommandSpec = {
  name: ['token', 'whoami'],
  usage: '[--json]',
  summary: 'who the current token stands for',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const me = await clientFrom(io).json<Record<string, unknown>>('GET', '/api/tokens/self');
    if (flag(values, 'json')) io.out(json(me));
    else io.out(Object.entries(me).map(([k, v]) => `${k}: ${String(v)}`).join('\n'));
    return 0;
  },
};

export const tokenCommands: CommandSpec[] = [issue, whoami];
