/**
 * Signatures for entries in a shared store (`--cache-redis-secret`): HMAC-SHA-256 through
 * WebCrypto (`crypto.subtle`, on Deno and in workerd alike), the key imported once and not
 * extractable. Whoever can write to the store but does not hold the secret cannot make an entry
 * a bridge will serve. Verification compares in constant time (WebCrypto's `verify`).
 *
 * @module
 */

/** The fewest bytes (UTF-8) a secret may have: 256 bits of key for HMAC-SHA-256. */
export const MIN_SECRET_BYTES = 32;

/** Bytes of a signature. */
export const SIGNATURE_LENGTH = 32;

/** Signs and checks bytes under one secret. Safe for concurrent use. */
export interface EntrySigner {
  /** The signature of `data` ({@linkcode SIGNATURE_LENGTH} bytes). */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** Whether `signature` is `data`'s under this secret. Never rejects (false instead). */
  verify(data: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/**
 * A signer for `secret`. The secret's text is not kept: only the imported key.
 *
 * @throws {RangeError} if the secret is shorter than {@linkcode MIN_SECRET_BYTES} (the message
 *   gives its length, never its text)
 *
 * @example
 * ```ts
 * const signer = await entrySigner(config.resolver.cacheRedisSecret);
 * const store = new RedisStore({ connection, signer });
 * ```
 */
export async function entrySigner(secret: string): Promise<EntrySigner> {
  const raw = new TextEncoder().encode(secret);
  if (raw.length < MIN_SECRET_BYTES) {
    throw new RangeError(
      `a cache secret needs at least ${MIN_SECRET_BYTES} bytes, this one has ${raw.length}`,
    );
  }
  const key = await crypto.subtle.importKey(
    "raw",
    raw,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  raw.fill(0);
  return {
    sign: async (data) => new Uint8Array(await crypto.subtle.sign("HMAC", key, own(data))),
    verify: async (data, signature) => {
      if (signature.length !== SIGNATURE_LENGTH) return false;
      try {
        return await crypto.subtle.verify("HMAC", key, own(signature), own(data));
      } catch {
        return false;
      }
    },
  };
}

/** `bytes` on a plain `ArrayBuffer` (WebCrypto takes no shared memory): itself, or a copy. */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : bytes.slice();
}
