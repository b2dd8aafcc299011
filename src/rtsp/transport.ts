// The Transport header (RFC 2326 12.39): a comma-separated list of alternatives, each a
// protocol followed by ';'-separated parameters.

export interface TransportSpec {
  /** 'RTP/AVP', 'RTP/AVP/TCP', 'RTP/AVP/UDP', ... upper-cased. */
  protocol: string;
  tcp: boolean;
  unicast: boolean;
  interleaved?: [number, number];
  clientPort?: [number, number];
  serverPort?: [number, number];
  mode?: string;
  ssrc?: string;
  /** Every parameter, keys lower-cased; flags have the value ''. */
  params: Record<string, string>;
}

/** `a` or `a-b` within [min, max] (a bare `a` means a-(a+1)); anything else is undefined. */
function range(v: string | undefined, min: number, max: number): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(v.trim());
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = m[2] !== undefined ? Number(m[2]) : a + 1;
  // Port 0 or 65536 would reach dgram's send and throw there, outside any request (issue 12 fuzz).
  return a >= min && a <= max && b >= min && b <= max ? [a, b] : undefined;
}

const PORTS: [number, number] = [1, 65535];
const CHANNELS: [number, number] = [0, 255];

export function parseTransport(value: string): TransportSpec[] {
  const out: TransportSpec[] = [];
  for (const alt of value.split(',')) {
    const [proto, ...rest] = alt.split(';').map((s) => s.trim());
    if (!proto) continue;
    const params: Record<string, string> = {};
    for (const p of rest) {
      if (!p) continue;
      const eq = p.indexOf('=');
      if (eq < 0) params[p.toLowerCase()] = '';
      else params[p.slice(0, eq).toLowerCase()] = p.slice(eq + 1).replace(/^"|"$/g, '');
    }
    const protocol = proto.toUpperCase();
    out.push({
      protocol,
      tcp: /\/TCP$/.test(protocol),
      unicast: !('multicast' in params),
      interleaved: range(params['interleaved'], ...CHANNELS),
      clientPort: range(params['client_port'], ...PORTS),
      serverPort: range(params['server_port'], ...PORTS),
      mode: params['mode']?.toLowerCase(),
      ssrc: params['ssrc'],
      params,
    });
  }
  return out;
}

/** The server's answer for interleaved TCP transport. */
export function formatInterleavedTransport(channels: [number, number], mode?: string): string {
  return `RTP/AVP/TCP;unicast;interleaved=${channels[0]}-${channels[1]}` + (mode ? `;mode=${mode}` : '');
}
