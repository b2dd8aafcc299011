import net from 'node:net';

/**
 * Opens `n` plain TCP connections to a loopback port, as a flood of idle clients would; resolves
 * once each is connected or closed by the server (at most 5 s each). The caller destroys them.
 */
export async function openRawConnections(port: number, n: number): Promise<net.Socket[]> {
  const all: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    all.push(s);
  }
  await Promise.all(
    all.map(
      (s) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 5000);
          s.once('connect', () => (clearTimeout(t), resolve()));
          s.once('close', () => (clearTimeout(t), resolve()));
        }),
    ),
  );
  return all;
}
