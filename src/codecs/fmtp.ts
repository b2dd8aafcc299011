// The a=fmtp parameter text (RFC 4566 6: `<format> <format specific parameters>`) as key/value
// pairs: how every codec's parameters are written in SDP for RTSP and WebRTC alike.

/** `k=v;k2=v2` as pairs, keys lower-cased, values split at the first '=' (base64 ends in '='). */
export function parseFmtp(params: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of params.split(';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) out[p.toLowerCase()] = '';
    else out[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim();
  }
  return out;
}

/** Pairs as fmtp text in the order given, leaving out empty values; undefined when none is left. */
export function writeFmtp(pairs: readonly (readonly [string, string | undefined])[]): string | undefined {
  const text = pairs.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${v}`).join(';');
  return text || undefined;
}
