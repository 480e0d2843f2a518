/**
 * Signs and verifies the system's tokens: JWTs signed with EdDSA (Ed25519) through `jose`.
 * The key pair lives in the database (`getOrCreateSigningKey`), so every service replica on
 * one database signs with the same key and accepts the others' tokens. Tokens are not
 * revocable: keep lifetimes short where it matters (job tokens) and rotate the key to revoke all.
 */
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { WmsError } from '../core/errors.js';
import { claimsOf, principalFromClaims, type Principal } from '../core/identity.js';
import { getOrCreateSigningKey, type DbHandle } from '../db/index.js';

const ALG = 'EdDSA';

export interface SignedToken {
  token: string;
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

/** Verified tokens kept in memory; beyond this the oldest is forgotten. */
const VERIFIED_CACHE_SIZE = 10_000;

export class TokenSigner {
  /**
   * Tokens already verified, with their principal and expiry. A pilot or a job presents the same
   * token on every call; checking the signature again each time cost ~20 % of a match request
   * (`match` benchmark profile). An entry is used only while its token has not expired.
   */
  private readonly verified = new Map<string, { principal: Principal; expiresAtMs: number }>();

  private constructor(
    private readonly kid: string,
    private readonly privateKey: jose.CryptoKey | Uint8Array,
    private readonly publicKey: jose.CryptoKey | Uint8Array,
    private readonly issuer: string,
    private readonly clock: () => Date,
  ) {}

  /** Loads the deployment's key pair from the database, creating it on first use. */
  static async open(
    handle: DbHandle,
    options: { issuer: string; clock?: () => Date },
  ): Promise<TokenSigner> {
    const key = await getOrCreateSigningKey(handle, generateSigningKey);
    const privateKey = await jose.importJWK(key.privateJwk as jose.JWK, ALG);
    const publicKey = await jose.importJWK(key.publicJwk as jose.JWK, ALG);
    return new TokenSigner(key.kid, privateKey, publicKey, options.issuer, options.clock ?? (() => new Date()));
  }

  /** A token standing for `principal`, valid `ttlSeconds` from now. */
  async sign(principal: Principal, ttlSeconds: number): Promise<SignedToken> {
    const now = Math.floor(this.clock().getTime() / 1000);
    const exp = now + Math.max(1, Math.floor(ttlSeconds));
    const { sub, ...claims } = claimsOf(principal);
    const token = await new jose.SignJWT({ ...claims })
      .setProtectedHeader({ alg: ALG, kid: this.kid, typ: 'JWT' })
      .setSubject(sub)
      .setIssuer(this.issuer)
      .setAudience(this.issuer)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /** The principal of a token; throws WMS_AUTH_INVALID when it is not ours, expired or malformed. */
  async verify(token: string): Promise<Principal> {
    const known = this.verified.get(token);
    if (known && known.expiresAtMs > this.clock().getTime()) return known.principal;
    this.verified.delete(token);
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, this.publicKey, {
        algorithms: [ALG],
        issuer: this.issuer,
        audience: this.issuer,
        currentDate: this.clock(),
      }));
    } catch (e) {
      const code = (e as { code?: string }).code;
      const reason =
        code === 'ERR_JWT_EXPIRED'
          ? 'token expired'
          : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
            ? 'bad signature'
            : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
              ? `bad claim (${(e as { claim?: string }).claim ?? '?'})`
              : 'malformed token';
      throw new WmsError('WMS_AUTH_INVALID', `invalid token: ${reason}`);
    }
    const principal = principalFromClaims(payload as Record<string, unknown>);
    if (payload.exp !== undefined) {
      if (this.verified.size >= VERIFIED_CACHE_SIZE) {
        this.verified.delete(this.verified.keys().next().value as string);
      }
      this.verified.set(token, { principal, expiresAtMs: payload.exp * 1000 });
    }
    return principal;
  }
}
