import { isIPv6 } from 'node:net';

/** Splits go2rtc-style listen addresses: ":1984", "127.0.0.1:1984", "[::1]:1984". */
export function parseListen(spec: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*))?:(\d{1,5})$/.exec(spec.trim());
  if (!m) throw new Error(`bad listen address "${spec}" (expected ":port" or "host:port")`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`bad listen address "${spec}": port out of range`);
  if (m[1] !== undefined && !isIPv6(m[1])) throw new Error(`bad listen address "${spec}": only IPv6 addresses go in brackets`);
  const host = m[1] ?? (m[2] ? m[2] : undefined);
  return { host, port };
}
