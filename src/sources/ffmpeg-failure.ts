// ffmpeg's own words for "the camera is not there or will not serve us": a refused or reset
// connection, a host name that does not resolve, an HTTP or RTSP 401/403/404. An ffmpeg that
// exits after one of these fails its waiting viewers at once (SourceError `immediate`) instead
// of being retried until start_timeout. Lines as ffmpeg 5.1 prints them at -loglevel error:
//   [tcp @ 0x…] Connection to tcp://127.0.0.1:9 failed: Connection refused
//   http://…: Server returned 401 Unauthorized (authorization failed)
//   [tcp @ 0x…] Failed to resolve hostname cam.invalid: Name or service not known
//   [rtsp @ 0x…] method DESCRIBE failed: 404 Not Found

const PATTERNS: RegExp[] = [
  /\bConnection refused\b/,
  /\bConnection reset by peer\b/,
  /\bServer returned 40[134]\b/,
  /\bmethod [A-Z_]+ failed: 40[134]\b/,
  /\bName or service not known\b/,
  /\bTemporary failure in name resolution\b/,
  /\bNo address associated with hostname\b/,
  /\bNo route to host\b/,
  /\bNetwork is unreachable\b/,
];

/** The first of ffmpeg's stderr lines that says the camera refused or is not there, if any. */
export function unreachableLine(lines: readonly string[]): string | undefined {
  return lines.find((l) => PATTERNS.some((p) => p.test(l)));
}
