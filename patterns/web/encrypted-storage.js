// Pattern 1 in the browser: seal an Anthropic API key under the user's password with Web Crypto.
//
// The envelope format is the one in docs/envelope-format.md, shared with the Python module
// patterns.encrypted_storage: an envelope made here opens in Python and vice versa. Only the
// PBKDF2-HMAC-SHA256 KDF is available here, because it is the only password KDF Web Crypto
// offers; scrypt and Argon2id envelopes open on the server only.
//
// What this protects: the envelope at rest (localStorage, IndexedDB, a synced profile, a copied
// disk). What it does not: script running in the page after the user unlocks (XSS, a hostile
// extension) can read the key just as the app does. Keep a strict Content-Security-Policy.
//
// Requires a secure context (https:// or http://127.0.0.1), where crypto.subtle exists.

export const FORMAT = "anthropic-key-patterns/encrypted-api-key";
export const VERSION = 1;
export const CIPHER = "aes-256-gcm";
export const KDF = "pbkdf2-sha256";
/** OWASP Password Storage Cheat Sheet figure for PBKDF2-HMAC-SHA256. */
export const DEFAULT_ITERATIONS = 600000;
/** Bounds checked before deriving, so a hostile envelope cannot demand unbounded work. */
export const LIMITS = Object.freeze({ minIterations: 100000, maxIterations: 2000000 });
export const MIN_PASSWORD_LENGTH = 8;

const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MAX_ENVELOPE_CHARS = 8192;
const MAX_CIPHERTEXT_BYTES = 2048;

export const DECRYPTION_FAILED =
  "could not open the encrypted API key: the password is wrong, or the stored envelope was " +
  "changed, damaged or made for another user. Try the password again; if it is right, " +
  "delete the stored envelope and enter the API key again.";
export const SERVER_ONLY_KDF =
  "this encrypted API key uses a key derivation (scrypt or Argon2id) that browsers cannot " +
  "compute; open it on the server, or re-encrypt it there with pbkdf2-sha256.";

/** The one error for every failure to open an envelope; its message never names a check. */
export class DecryptionError extends Error {
  constructor(message = DECRYPTION_FAILED) {
    super(message);
    this.name = "DecryptionError";
  }
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function toBase64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new Error("not base64url");
  }
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  // One spelling per byte string: unused low bits of the last character must be zero.
  if (toBase64url(bytes) !== text) throw new Error("not canonical base64url");
  return bytes;
}

function additionalData(associatedData) {
  if (associatedData !== undefined && associatedData !== null && typeof associatedData !== "string") {
    throw new TypeError("associatedData must be a string");
  }
  return encoder.encode(`${FORMAT}/v${VERSION}\u0000${associatedData ?? ""}`);
}

function serialize(iterations, salt, iv, ciphertext) {
  // Field order and compact spelling are part of the format (the canonical form).
  return JSON.stringify({
    format: FORMAT,
    version: VERSION,
    kdf: { name: KDF, iterations },
    cipher: CIPHER,
    salt: toBase64url(salt),
    iv: toBase64url(iv),
    ciphertext: toBase64url(ciphertext),
  });
}

async function deriveAesKey(password, salt, iterations, usages) {
  if (typeof password !== "string") throw new TypeError("the password must be a string");
  const material = await crypto.subtle.importKey(
    "raw",
    encoder.encode(password.normalize("NFC")),
    "PBKDF2",
    false,
    ["deriveKey"],
  );
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    material,
    { name: "AES-GCM", length: 256 },
    false, // not extractable: page script cannot export the derived key
    usages,
  );
}

function checkIterations(iterations, limits) {
  return Number.isSafeInteger(iterations) && iterations >= limits.minIterations && iterations <= limits.maxIterations;
}

/**
 * Encrypt `apiKey` under `password`; returns the JSON envelope (a string).
 * options: { associatedData?: string, iterations?: number, limits?: {minIterations, maxIterations} }
 */
export async function encryptApiKey(apiKey, password, options = {}) {
  if (typeof apiKey !== "string" || !/^[\x21-\x7e]+$/.test(apiKey.trim())) {
    throw new TypeError("the API key must be non-empty printable ASCII; copy it again from the Console");
  }
  if (typeof password !== "string" || password.length < MIN_PASSWORD_LENGTH) {
    throw new RangeError(`the password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const limits = { ...LIMITS, ...(options.limits ?? {}) };
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  if (!checkIterations(iterations, limits)) {
    throw new RangeError(`iterations must be an integer in [${limits.minIterations}, ${limits.maxIterations}]`);
  }
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const key = await deriveAesKey(password, salt, iterations, ["encrypt"]);
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(options.associatedData), tagLength: 128 },
    key,
    encoder.encode(apiKey.trim()),
  );
  return serialize(iterations, salt, iv, new Uint8Array(sealed));
}

const TOP_FIELDS = ["format", "version", "kdf", "cipher", "salt", "iv", "ciphertext"];

function parseEnvelope(envelopeJson, limits) {
  if (typeof envelopeJson !== "string" || envelopeJson.length > MAX_ENVELOPE_CHARS) {
    throw new Error("not an envelope");
  }
  const text = envelopeJson.trim();
  const doc = JSON.parse(text);
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error("not an object");
  if (Object.keys(doc).sort().join() !== [...TOP_FIELDS].sort().join()) throw new Error("fields");
  if (doc.format !== FORMAT || doc.version !== VERSION || doc.cipher !== CIPHER) throw new Error("version");
  const kdf = doc.kdf;
  if (kdf === null || typeof kdf !== "object" || Array.isArray(kdf)) throw new Error("kdf");
  if (kdf.name === "scrypt" || kdf.name === "argon2id") return { serverOnly: true };
  if (kdf.name !== KDF || Object.keys(kdf).join() !== "name,iterations") throw new Error("kdf");
  if (!checkIterations(kdf.iterations, limits)) throw new Error("iterations out of bounds");
  const salt = fromBase64url(doc.salt);
  const iv = fromBase64url(doc.iv);
  const ciphertext = fromBase64url(doc.ciphertext);
  if (salt.length !== SALT_BYTES || iv.length !== IV_BYTES) throw new Error("lengths");
  if (ciphertext.length <= TAG_BYTES || ciphertext.length > MAX_CIPHERTEXT_BYTES) throw new Error("lengths");
  // The canonical form rejects duplicate fields, reordering and stray whitespace.
  if (serialize(kdf.iterations, salt, iv, ciphertext) !== text) throw new Error("not canonical");
  return { serverOnly: false, iterations: kdf.iterations, salt, iv, ciphertext };
}

/**
 * Open an envelope made here or by patterns.encrypted_storage (PBKDF2 envelopes only).
 * Every failure is a DecryptionError; nothing partial is ever returned.
 * options: { associatedData?: string, limits?: {minIterations, maxIterations} }
 */
export async function decryptApiKey(envelopeJson, password, options = {}) {
  const limits = { ...LIMITS, ...(options.limits ?? {}) };
  let parsed;
  try {
    parsed = parseEnvelope(envelopeJson, limits);
  } catch {
    throw new DecryptionError();
  }
  if (parsed.serverOnly) throw new DecryptionError(SERVER_ONLY_KDF);
  try {
    const key = await deriveAesKey(password, parsed.salt, parsed.iterations, ["decrypt"]);
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: parsed.iv, additionalData: additionalData(options.associatedData), tagLength: 128 },
      key,
      parsed.ciphertext,
    );
    return strictDecoder.decode(plaintext);
  } catch {
    throw new DecryptionError();
  }
}

/** True when the envelope uses fewer PBKDF2 iterations than `iterations` (no password needed). */
export function needsUpgrade(envelopeJson, iterations = DEFAULT_ITERATIONS, options = {}) {
  const limits = { ...LIMITS, ...(options.limits ?? {}) };
  let parsed;
  try {
    parsed = parseEnvelope(envelopeJson, limits);
  } catch {
    throw new DecryptionError();
  }
  return parsed.serverOnly ? false : parsed.iterations < iterations;
}
