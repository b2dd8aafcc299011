// api.tls_cert and api.tls_key (go2rtc's keys), read and checked at startup: each is PEM text or a
// file path. go2rtc (internal/api/api.go, tlsListen) takes both as paths when neither has a line
// break, else both as PEM text; here each value is judged by itself (a line break: PEM text; none:
// a path), which reads every pair go2rtc reads the same way and also a certificate inline with
// its key in a file. Every problem is an Error whose message names the key and the path or
// the reason, never the key's contents.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';

export interface TlsSettings {
  cert: string;
  key: string;
}

/** What https.createServer takes, and what the startup log may say about it. */
export interface TlsCredentials {
  cert: Buffer;
  key: Buffer;
  /** For the log: the certificate's file (absolute) or "inline"; likewise the key's. */
  certFrom: string;
  keyFrom: string;
  subject: string;
  /** The leaf certificate's validity, as X509Certificate prints it. */
  validFrom: string;
  validTo: string;
  /** The DNS names and IP addresses the certificate is for (subjectAltName), as it prints them. */
  altNames: string;
}

type KeyName = 'tls_cert' | 'tls_key';

function fail(name: KeyName, from: string, why: string): Error {
  return new Error(`api.${name}${from === 'inline' ? ' (inline PEM)' : ` "${from}"`}: ${why}`);
}

/** The value's bytes and where they came from ("inline" or the absolute path). */
function read(name: KeyName, value: string): { data: Buffer; from: string } {
  if (value.includes('\n')) return { data: Buffer.from(value), from: 'inline' };
  // One line that is PEM (a YAML plain or quoted scalar folds the line breaks away): never quote it.
  if (value.includes('-----BEGIN')) {
    throw new Error(
      `api.${name}: looks like PEM text on a single line (its line breaks were lost); write it as a YAML block scalar (\`${name}: |\` and the PEM indented below) or give a file path`,
    );
  }
  const file = path.resolve(value);
  try {
    return { data: readFileSync(file), from: file };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'file not found' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot read: ${code ?? (e as Error).message}`;
    throw fail(name, file, why);
  }
}

/** OpenSSL's reason ("PEM routines::no start line"), without node's prefixes; it quotes no input. */
function reason(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return (err.message ?? String(e)).replace(/^error:[0-9A-F]+:/, '');
}

/** Reads and checks the certificate and key; throws an Error naming the key at fault. */
export function loadTlsCredentials(settings: TlsSettings): TlsCredentials {
  const cert = read('tls_cert', settings.cert);
  const key = read('tls_key', settings.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert.data);
  } catch (e) {
    throw fail('tls_cert', cert.from, `not a PEM certificate ("-----BEGIN CERTIFICATE-----" …): ${reason(e)}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.data);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MISSING_PASSPHRASE') {
      throw fail('tls_key', key.from, 'the private key is encrypted (a passphrase is not supported): store it without one, e.g. `openssl pkey -in key.pem -out plain-key.pem`');
    }
    throw fail('tls_key', key.from, `not a PEM private key ("-----BEGIN PRIVATE KEY-----" …): ${reason(e)}`);
  }
  if (privateKey.type !== 'private') throw fail('tls_key', key.from, 'holds no private key');
  if (!x509.checkPrivateKey(privateKey)) {
    throw fail('tls_key', key.from, `does not match api.tls_cert${cert.from === 'inline' ? '' : ` "${cert.from}"`}: it is not the private key of that certificate`);
  }
  // What https will do with them (a certificate chain after the first, the key's type).
  try {
    createSecureContext({ cert: cert.data, key: key.data });
  } catch (e) {
    throw new Error(`api.tls_cert / api.tls_key: not usable for TLS: ${reason(e)}`);
  }
  return {
    cert: cert.data,
    key: key.data,
    certFrom: cert.from,
    keyFrom: key.from,
    subject: x509.subject.replace(/\n/g, ', '),
    validFrom: x509.validFrom,
    validTo: x509.validTo,
    altNames: x509.subjectAltName ?? '',
  };
}
