/**
 * Signs and verifies the system's tokens: JWTs (compact JWS). The key pair lives in the database
 * (`getOrCreateSigningKey`), so every service replica on one database signs with the same key and
 * accepts the others' tokens.
 *
 * Two algorithms, chosen by the token's role when it is signed:
 * - job tokens (role `job`, one minted per match) carry an HMAC-SHA256 (`HS256`) under a key
 *   derived from the Ed25519 private key (HKDF-SHA256, salt the key id, `JOB_MAC_INFO`). Only the
 *   services verify job tokens, and every replica derives the same MAC key from the same row, so
 *   nothing outside the database can make or check one. Signing one costs ~3 µs against ~100 µs
 *   for EdDSA through `jose` (10-15 % of a match request: `match` benchmark profile).
 * - every other token (users, pilots, admins) is signed with EdDSA (Ed25519, node:crypto with a
 *   key object made once).
 *
 * Verification (`jose`) takes the key from the token's algorithm: EdDSA with the public key,
 * HS256 with the derived MAC key (never the public key: no algorithm confusion), and refuses an
 * HS256 token whose role is not `job`, so a MAC can never stand for a pilot, user or admin.
 *
 * Revocation: the `revoked_tokens` table names one token (its `jti`) or every token of a
 * subject (`vo`, `sub`) issued at or before a time. Each signer loads the rows when it opens and,
 * once `startPolling` is called (the app does), reads new ones every few seconds, so that a
 * revocation made through one replica holds on every replica within that interval. `verify`
 * refuses a revoked token, cached or not. Rows past their `expires_at` are ignored, and deleted
 * on a poll now and then.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  hkdfSync,
  randomUUID,
  sign as edSign,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import * as jose from 'jose';
import { WmsError } from '../core/errors.js';
import { claimsOf, principalFromClaims, type Principal } from '../core/identity.js';
import {
  deleteExpiredRevocations,
  getOrCreateSigningKey,
  REVOCATION_ID_MARGIN,
  revocationsAfter,
  type DbHandle,
  type RevocationRow,
} from '../db/index.js';

const ALG = 'EdDSA';
/** The job tokens' algorithm (an HMAC-SHA256 under the derived MAC key). */
const MAC_ALG = 'HS256';
/** HKDF `info` of the job-token MAC key: a new value gives every replica a new key at once. */
const JOB_MAC_INFO = 'wms job-token MAC v1';

/** The MAC key of job tokens, derived from the Ed25519 private key (same row, same key, every replica). */
export function jobMacKey(kid: string, privateJwk: { d?: unknown }): Buffer {
  if (typeof privateJwk.d !== 'string') throw new Error('signing key: the private JWK has no "d"');
  return Buffer.from(hkdfSync('sha256', Buffer.from(privateJwk.d, 'base64url'), kid, JOB_MAC_INFO, 32));
}

function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export interface SignedToken {
  token: string;
  expiresAt: Date;
  jti: string;
}

/** A verified token: its principal and registered claims. */
export interface VerifiedToken {
  principal: Principal;
  jti: string | null;
  issuedAt: Date;
  expiresAt: Date;
}

/** A token whose signature is ours, whatever its expiry (what a revocation needs to know). */
export interface TokenFacts {
  jti: string | null;
  subject: string;
  vo: string;
  role: string;
  expiresAt: Date;
}

/** A new Ed25519 key pair as JWKs, with a fresh key id. */
export async function generateSigningKey(): Promise<{
  kid: string;
  privateJwk: jose.JWK;
  publicJwk: jose.JWK;
}> {
  const { privateKey, publicKey } = await jose.generateKeyPair(ALG, {
    crv: 'Ed25519',
    extractable: true,
  });
  const kid = randomUUID();
  const privateJwk = { ...(await jose.exportJWK(privateKey)), kid, alg: ALG };
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg: ALG };
  return { kid, privateJwk, publicJwk };
}

/**
 * Verified tokens kept in memory; beyond this the oldest is forgotten. A replica behind a load
 * balancer sees every pilot's token and every running job's: 100,000 pilots make 200,000. At
 * ~310 bytes an entry (the key is the token's SHA-256, not the token) that is ~75 MiB. With
 * 10,000 the `grid` benchmark's 100,000 pilots missed on nearly every call, and checking the
 * signatures again took ~20 % of each replica's time.
 */
const VERIFIED_CACHE_SIZE = 250_000;

/** The cache's key of a token: its SHA-256 (a fixed 43 characters, whatever the token's length). */
function cacheKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
/** Expired revocation rows are deleted from the table at most this often by one replica. */
const PURGE_EVERY_MS = 60_000;

/** The key of a subject revocation; `vo` null (any VO) gets its own key. */
function subjectKey(vo: string | null, subject: string): string {
  return `${vo === null ? '\u0001any' : vo}\u0000${subject}`;
}

/**
 * The revocation rows this process knows, by jti and by subject. A subject row revokes the
 * tokens of that subject whose `iat` (whole seconds) is at or before its `revoked_at`.
 */
class Revocations {
  private readonly byJti = new Map<string, number>();
  private readonly bySubject = new Map<string, { revokedAtMs: number; expiresAtMs: number }[]>();
  private readonly seen = new Set<number>();
  lastId = 0;

  add(row: RevocationRow): void {
    if (this.seen.has(row.id)) return;
    this.seen.add(row.id);
    this.lastId = Math.max(this.lastId, row.id);
    const expiresAtMs = row.expiresAt.getTime();
    if (row.jti !== null) {
      this.byJti.set(row.jti, expiresAtMs);
    } else if (row.subject !== null) {
      const key = subjectKey(row.vo, row.subject);
      const list = this.bySubject.get(key) ?? [];
      list.push({ revokedAtMs: row.revokedAt.getTime(), expiresAtMs });
      this.bySubject.set(key, list);
    }
  }

  /** The latest unexpired subject revocation time for (vo, subject) in any VO or this one. */
  subjectRevokedAt(vo: string, subject: string, nowMs: number): number | null {
    let latest: number | null = null;
    for (const key of [subjectKey(vo, subject), subjectKey(null, subject)]) {
      for (const r of this.bySubject.get(key) ?? []) {
        if (r.expiresAtMs > nowMs && (latest === null || r.revokedAtMs > latest)) latest = r.revokedAtMs;
      }
    }
    return latest;
  }

  /** Why `t` is revoked, or null. */
  reason(t: { jti: string | null; principal: Principal; issuedAtMs: number }, nowMs: number): string | null {
    if (t.jti !== null) {
      const exp = this.byJti.get(t.jti);
      if (exp !== undefined && exp > nowMs) return 'token revoked';
    }
    const at = this.subjectRevokedAt(t.principal.vo, t.principal.user, nowMs);
    if (at !== null && t.issuedAtMs <= at)
      return `every token of ${t.principal.user} issued before ${new Date(at).toISOString()} is revoked`;
    return null;
  }

  /** Forgets what has expired, and the ids the next read can no longer return. */
  prune(nowMs: number): void {
    for (const id of this.seen) if (id <= this.lastId - REVOCATION_ID_MARGIN) this.seen.delete(id);
    for (const [jti, exp] of this.byJti) if (exp <= nowMs) this.byJti.delete(jti);
    for (const [key, list] of this.bySubject) {
      const live = list.filter((r) => r.expiresAtMs > nowMs);
      if (live.length === 0) this.bySubject.delete(key);
      else this.bySubject.set(key, live);
    }
  }
}

interface CachedToken {
  principal: Principal;
  jti: string | null;
  issuedAtMs: number;
  expiresAtMs: number;
}

export class TokenSigner {
  /**
   * Tokens already verified (keyed by `cacheKey`), with their principal and expiry. A pilot or
   * a job presents the same token on every call; checking the signature again each time cost
   * ~20 % of a match request (`match` benchmark profile). An entry is used only while its token
   * has not expired and is not revoked; only tokens whose signature was checked get one.
   */
  private readonly verified = new Map<string, CachedToken>();
  private readonly revocations = new Revocations();
  private poll: NodeJS.Timeout | null = null;
  private polling = false;
  private lastPurgeMs = 0;

  /** The encoded protected headers, per algorithm (the same for every token). */
  private readonly edHeader: string;
  private readonly macHeader: string;
  /** The verification key of a token's header: the public key, or the MAC key for HS256 only. */
  private readonly keyFor = (header: jose.JWSHeaderParameters): jose.CryptoKey | Uint8Array =>
    header.alg === MAC_ALG ? this.macKey : this.publicKey;

  private constructor(
    private readonly handle: DbHandle,
    kid: string,
    private readonly privateKey: KeyObject,
    private readonly publicKey: jose.CryptoKey | Uint8Array,
    private readonly macKey: Uint8Array,
    private readonly issuer: string,
    private readonly clock: () => Date,
  ) {
    this.edHeader = base64urlJson({ alg: ALG, kid, typ: 'JWT' });
    this.macHeader = base64urlJson({ alg: MAC_ALG, kid, typ: 'JWT' });
  }

  /** Loads the deployment's key pair from the database (creating it on first use) and the revocations. */
  static async open(handle: DbHandle, options: { issuer: string; clock?: () => Date }): Promise<TokenSigner> {
    const key = await getOrCreateSigningKey(handle, generateSigningKey);
    const privateKey = createPrivateKey({ key: key.privateJwk as JsonWebKey, format: 'jwk' });
    const publicKey = await jose.importJWK(key.publicJwk as jose.JWK, ALG);
    const macKey = jobMacKey(key.kid, key.privateJwk);
    const signer = new TokenSigner(handle, key.kid, privateKey, publicKey, macKey, options.issuer, options.clock ?? (() => new Date()));
    await signer.refreshRevocations();
    return signer;
  }

  /** A token standing for `principal`, valid `ttlSeconds` from now (a job's: MAC-signed, see the top). */
  async sign(principal: Principal, ttlSeconds: number): Promise<SignedToken> {
    const nowMs = this.clock().getTime();
    let iat = Math.floor(nowMs / 1000);
    // A subject revoked this very second: a token issued after the revocation must not fall
    // under it (iat has whole seconds), so it is dated the next second.
    const revokedAt = this.revocations.subjectRevokedAt(principal.vo, principal.user, nowMs);
    if (revokedAt !== null && iat <= Math.floor(revokedAt / 1000)) iat = Math.floor(revokedAt / 1000) + 1;
    const exp = Math.floor(nowMs / 1000) + Math.max(1, Math.floor(ttlSeconds));
    const jti = randomUUID();
    const claims = { ...claimsOf(principal), iss: this.issuer, aud: this.issuer, iat, exp, jti };
    const mac = principal.role === 'job';
    const input = `${mac ? this.macHeader : this.edHeader}.${base64urlJson(claims)}`;
    const signature = mac
      ? createHmac('sha256', this.macKey).update(input).digest('base64url')
      : edSign(null, Buffer.from(input), this.privateKey).toString('base64url');
    return { token: `${input}.${signature}`, expiresAt: new Date(exp * 1000), jti };
  }

  /** The principal of a token; throws WMS_AUTH_INVALID when it is not ours, expired, revoked or malformed. */
  async verify(token: string): Promise<Principal> {
    return (await this.inspect(token)).principal;
  }

  /** `verify`, with the token's jti, issue and expiry times. */
  async inspect(token: string): Promise<VerifiedToken> {
    const nowMs = this.clock().getTime();
    const key = cacheKey(token);
    let known = this.verified.get(key);
    if (known && known.expiresAtMs <= nowMs) {
      this.verified.delete(key);
      known = undefined;
    }
    if (!known) {
      let payload: jose.JWTPayload;
      let header: jose.JWSHeaderParameters;
      try {
        ({ payload, protectedHeader: header } = await jose.jwtVerify(token, this.keyFor, {
          algorithms: [ALG, MAC_ALG],
          issuer: this.issuer,
          audience: this.issuer,
          currentDate: this.clock(),
        }));
      } catch (e) {
        throw new WmsError('WMS_AUTH_INVALID', `invalid token: ${joseReason(e)}`);
      }
      if (!algorithmFitsRole(header, payload)) throw new WmsError('WMS_AUTH_INVALID', `invalid token: ${MAC_NOT_JOB}`);
      const principal = principalFromClaims(payload as Record<string, unknown>);
      known = {
        principal,
        jti: typeof payload.jti === 'string' ? payload.jti : null,
        issuedAtMs: (payload.iat ?? 0) * 1000,
        expiresAtMs: payload.exp === undefined ? Number.POSITIVE_INFINITY : payload.exp * 1000,
      };
      if (payload.exp !== undefined) {
        if (this.verified.size >= VERIFIED_CACHE_SIZE) {
          this.verified.delete(this.verified.keys().next().value as string);
        }
        this.verified.set(key, known);
      }
    }
    const revoked = this.revocations.reason(known, nowMs);
    if (revoked !== null) throw new WmsError('WMS_AUTH_INVALID', `invalid token: ${revoked}`);
    return {
      principal: known.principal,
      jti: known.jti,
      issuedAt: new Date(known.issuedAtMs),
      expiresAt: new Date(known.expiresAtMs),
    };
  }

  /**
   * What a revocation needs of a token signed with this key (its jti, subject and expiry), even
   * when it has expired or is revoked already; throws WMS_VALIDATION when it is not one of ours.
   */
  async facts(token: string): Promise<TokenFacts> {
    let payload: jose.JWTPayload;
    try {
      const { payload: bytes, protectedHeader } = await jose.compactVerify(token, this.keyFor, { algorithms: [ALG, MAC_ALG] });
      payload = JSON.parse(new TextDecoder().decode(bytes)) as jose.JWTPayload;
      if (!algorithmFitsRole(protectedHeader, payload)) throw new Error(MAC_NOT_JOB);
    } catch {
      throw new WmsError('WMS_VALIDATION', 'not a token of this deployment (bad signature or malformed)');
    }
    if (payload.iss !== this.issuer || typeof payload.sub !== 'string' || typeof payload.exp !== 'number') {
      throw new WmsError('WMS_VALIDATION', 'not a token of this deployment (issuer, subject or expiry missing)');
    }
    const vo = (payload as Record<string, unknown>)['vo'];
    const role = (payload as Record<string, unknown>)['role'];
    return {
      jti: typeof payload.jti === 'string' ? payload.jti : null,
      subject: payload.sub,
      vo: typeof vo === 'string' ? vo : '',
      role: typeof role === 'string' ? role : '',
      expiresAt: new Date(payload.exp * 1000),
    };
  }

  /** Takes a revocation just written by this process into account at once. */
  noteRevocation(row: RevocationRow): void {
    this.revocations.add(row);
  }

  /** Reads the revocation rows written since the last read (by any replica). */
  async refreshRevocations(): Promise<void> {
    const now = this.clock();
    for (const row of await revocationsAfter(this.handle, this.revocations.lastId, now)) this.revocations.add(row);
    this.revocations.prune(now.getTime());
    if (now.getTime() - this.lastPurgeMs >= PURGE_EVERY_MS) {
      this.lastPurgeMs = now.getTime();
      await deleteExpiredRevocations(this.handle, now);
    }
  }

  /**
   * Reads new revocations every `seconds` until `close()`. Failures (the database restarting)
   * are passed to `onError` and the next poll tries again at the same pace; `onOk` is called
   * after each read that worked (to log the end of an outage). Revocations already read keep
   * being enforced meanwhile; rows written during an outage are read at the first poll after it.
   */
  startPolling(seconds: number, onError: (e: unknown) => void = () => undefined, onOk: () => void = () => undefined): void {
    if (this.polling) return;
    this.polling = true;
    const tick = () => {
      this.poll = setTimeout(
        () => {
          this.refreshRevocations()
            .then(onOk, onError)
            .finally(() => {
              if (this.polling) tick();
            });
        },
        Math.max(50, seconds * 1000),
      );
      this.poll.unref();
    };
    tick();
  }

  /** Stops polling. */
  close(): void {
    this.polling = false;
    if (this.poll) clearTimeout(this.poll);
    this.poll = null;
  }
}

const MAC_NOT_JOB = 'a MAC-signed token must be a job token';

/** An HS256 (MAC) token is a job token; EdDSA tokens may be of any role. */
function algorithmFitsRole(header: jose.JWSHeaderParameters, payload: jose.JWTPayload): boolean {
  return header.alg !== MAC_ALG || (payload as Record<string, unknown>)['role'] === 'job';
}

function joseReason(e: unknown): string {
  const code = (e as { code?: string }).code;
  return code === 'ERR_JWT_EXPIRED'
    ? 'token expired'
    : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
      ? 'bad signature'
      : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
        ? `bad claim (${(e as { claim?: string }).claim ?? '?'})`
        : 'malformed token';
}
