/**
 * `wms token issue` and `wms token whoami`.
 *
 * `issue` asks the running server (`POST /api/tokens`, admin token from WMS_TOKEN, the config
 * file or <data-dir>/admin.token). When no server answers, it opens the database itself
 * (`--data-dir`, `--db`, same defaults and env as the server) and signs with the key stored
 * there: the admin bootstrap. Prints the token alone, so `export WMS_TOKEN=$(wms token issue …)`
 * works.
 */
import { isValidName, PERSON_ROLES, siteAdminSitesProblem, type PersonPrincipal, type PersonRole } from '../../core/identity.js';
import { parseDuration } from '../../core/config.js';
import type { Identity, IssuedToken, Revocation, RevocationAnswer, RevocationList } from '../../api/index.js';
import { clientFrom, flag, readTextOrNull, str, strs, type CommandSpec } from '../command.js';
import { resolveClientConfig, tokenExpiresAt } from '../client-config.js';
import { CliError, UsageError } from '../errors.js';
import { humanDuration, json, shortTime, table } from '../output.js';
import { clientCommand, printAnswer } from './client-command.js';
import { SERVER_OPTIONS, serviceConfigFrom } from './server.js';

const issue = clientCommand({
  name: ['token', 'issue'],
  usage: '--user U --vo V --group G [--role user|admin|site-admin] [--site NAME]... [--ttl 30d]',
  summary: 'issue a token (admins; falls back to the database when no server runs)',
  details:
    'A site-admin token administers the sites named with --site (one or more): it may apply,\n' +
    'ban and allow those sites, their computing elements and queues, and read their pilots;\n' +
    'nothing of other sites. The local site (Local.localhost) is managed by admins only.',
  options: {
    user: { type: 'string', value: 'U', description: 'user name' },
    vo: { type: 'string', value: 'V', description: 'virtual organisation' },
    group: { type: 'string', value: 'G', description: 'group within the VO' },
    role: { type: 'string', value: 'R', description: `${PERSON_ROLES.join(', ')} (default user)` },
    site: {
      type: 'string',
      multiple: true,
      value: 'NAME',
      description: 'site-admin: a site it administers (repeat; required; never the local site)',
    },
    ttl: { type: 'string', value: 'D', description: 'lifetime: 30d, 12h, 90m, 3600 (default 30d)' },
    'data-dir': SERVER_OPTIONS['data-dir'],
    db: SERVER_OPTIONS.db,
    config: SERVER_OPTIONS.config,
  },
  env: { WMS_DATABASE_URL: 'database for the bootstrap (no server running)' },
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
    const sites = [...new Set(strs(values, 'site'))];
    if (role === 'site-admin') {
      const problem = siteAdminSitesProblem(sites);
      if (problem) throw new UsageError(`--site: ${problem}; give --site NAME for each site it administers`);
    } else if (sites.length > 0) {
      throw new UsageError(`--site is only for --role site-admin (not ${role})`);
    }
    const ttlText = str(values, 'ttl');
    const ttlSeconds = ttlText === undefined ? undefined : parseDuration(ttlText);
    if (ttlSeconds === null) throw new UsageError(`--ttl: "${ttlText}" is not a duration (30d, 12h, 90m, 3600)`);

    // With --data-dir, the admin token of that data directory is the default credential.
    const dataDir = str(values, 'data-dir');
    const clientIo = dataDir === undefined ? io : { ...io, env: { ...io.env, WMS_DATA_DIR: dataDir } };
    let answer: IssuedToken;
    try {
      answer = await clientFrom(clientIo).json<IssuedToken>('POST', '/api/tokens', {
        user,
        vo,
        group,
        role,
        ...(role === 'site-admin' ? { sites } : {}),
        ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      });
    } catch (e) {
      if (!(e instanceof CliError) || e.code !== 'UNREACHABLE') throw e;
      // No server: sign from the database directly (admin bootstrap).
      const config = await serviceConfigFrom(values, io);
      const { issueTokenDirect } = await import('../../services/server.js');
      const principal: PersonPrincipal = { role, user, vo, group, ...(role === 'site-admin' ? { sites } : {}) };
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
    printAnswer(io, values, answer, (a) => a.token);
    // On stderr, so that `export WMS_TOKEN=$(wms token issue ...)` still takes the token alone.
    if (!flag(values, 'json')) {
      io.err(`wms: a ${role} token for ${user} (VO ${vo}, group ${group}), ${expiryLine(answer.expiresAt)}`);
      io.err('wms: use it with: export WMS_TOKEN=<the token above>, or put {"token": "<it>"} in ~/.config/pilot-wms/config.json');
    }
    return 0;
  },
});

/** `expires: 2026-12-05T10:00:00Z (in 23 h)`, or `expired at ...`. */
function expiryLine(expiresAt: string, now = Date.now()): string {
  const left = (Date.parse(expiresAt) - now) / 1000;
  const at = expiresAt.replace(/\.\d+Z$/, 'Z');
  return left > 0 ? `expires: ${at} (in ${humanDuration(left)})` : `expired at ${at}`;
}

const whoami = clientCommand({
  name: ['token', 'whoami'],
  usage: '',
  summary: 'who the current token stands for, and when it expires',
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const me = await clientFrom(io).json<Identity>('GET', '/api/tokens/self');
    const exp = tokenExpiresAt(resolveClientConfig(io.env, io.home, io.cwd, readTextOrNull).token);
    const answer: Identity & { expiresAt?: string } = { ...me, ...(exp ? { expiresAt: exp.toISOString() } : {}) };
    printAnswer(io, values, answer, ({ expiresAt, ...who }) =>
      [
        ...Object.entries(who).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`),
        ...(expiresAt ? [expiryLine(expiresAt)] : []),
      ].join('\n'),
    );
    return 0;
  },
});

function revocationWhat(r: Revocation): string {
  if (r.jti !== null) return `token ${r.jti}`;
  return `every token of ${r.subject ?? '?'}${r.vo === null ? '' : ` (VO ${r.vo})`} issued until ${r.revokedAt}`;
}

const revoke = clientCommand({
  name: ['token', 'revoke'],
  usage: 'TOKEN | --user U --vo V | --pilot ID  [--reason TEXT]',
  summary: 'revoke a token, every token of a user, or every token of a pilot (admins)',
  details:
    'A revoked token answers 401 on every replica within tokens.revocationPoll (2 s). With --user\n' +
    'and --vo, every token of that user of that VO issued until now is revoked (its running jobs\n' +
    "tokens too); tokens issued afterwards work. --pilot revokes the pilot's tokens. TOKEN '-' reads\n" +
    'the token from standard input.',
  options: {
    user: { type: 'string', value: 'U', description: 'revoke every token of this user (with --vo)' },
    vo: { type: 'string', value: 'V', description: 'the VO of --user' },
    pilot: { type: 'string', value: 'ID', description: 'revoke every token of this pilot' },
    reason: { type: 'string', value: 'TEXT', description: 'why (kept with the revocation)' },
  },
  positionals: [0, 1],
  async run(values, positionals, io) {
    const user = str(values, 'user');
    const vo = str(values, 'vo');
    const pilot = str(values, 'pilot');
    const reason = str(values, 'reason');
    let token = positionals[0];
    const forms = [token !== undefined, user !== undefined || vo !== undefined, pilot !== undefined].filter(Boolean).length;
    if (forms !== 1) throw new UsageError('give one of: a TOKEN, --user U --vo V, or --pilot ID');
    let body: Record<string, unknown>;
    if (token !== undefined) {
      if (token === '-') token = (await readStdin()).trim();
      if (token === '') throw new UsageError('TOKEN is empty');
      body = { token };
    } else if (pilot !== undefined) {
      if (!/^[1-9]\d{0,15}$/.test(pilot)) throw new UsageError(`--pilot: "${pilot}" is not a pilot id`);
      body = { pilotId: Number(pilot) };
    } else {
      if (user === undefined || vo === undefined) throw new UsageError('--user and --vo go together');
      if (!isValidName(user)) throw new UsageError(`--user: "${user}" is not a valid name (letters, digits, . _ @ -)`);
      if (!isValidName(vo)) throw new UsageError(`--vo: "${vo}" is not a valid name (letters, digits, . _ @ -)`);
      body = { user, vo };
    }
    if (reason !== undefined) body['reason'] = reason;
    const answer = await clientFrom(io).json<RevocationAnswer>('POST', '/api/tokens/revocations', body);
    printAnswer(io, values, answer.revocation, (r) => `revoked: ${revocationWhat(r)}`);
    return 0;
  },
});

const revocations = clientCommand({
  name: ['token', 'revocations'],
  usage: '',
  summary: 'the revocations in force, newest first (admins)',
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const { revocations: list } = await clientFrom(io).json<RevocationList>('GET', '/api/tokens/revocations');
    if (flag(values, 'json')) io.out(json(list));
    else if (list.length === 0) io.out('no revocations in force');
    else
      io.out(
        table(
          ['ID', 'REVOKED', 'WHAT', 'BY', 'REASON'],
          list.map((r) => [r.id, shortTime(r.revokedAt), revocationWhat(r), r.revokedBy, r.reason]),
        ),
      );
    return 0;
  },
});

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const tokenCommands: CommandSpec[] = [issue, whoami, revoke, revocations];
