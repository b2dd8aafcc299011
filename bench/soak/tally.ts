// What the soak's cycles did, counted as they finish: per kind, close reasons, failures.
export interface KindStats {
  cycles: number;
  ok: number;
  /** Cycles that received video (required for clean, vanished and RTSP). */
  withMedia: number;
  videoPackets: number;
}

export class Tally {
  readonly kinds: Record<string, KindStats> = {};
  /** WebRTC close reasons camrelay logged, and RTSP session end reasons. */
  readonly webrtcReasons: Record<string, number> = {};
  readonly rtspReasons: Record<string, number> = {};
  readonly wsDrop = { abortedBeforeAnswer: 0, answeredFirst: 0 };
  /** The first 20 failures, with the cycle they belong to. */
  readonly failures: string[] = [];
  failed = 0;

  kind(k: string): KindStats {
    return (this.kinds[k] ??= { cycles: 0, ok: 0, withMedia: 0, videoPackets: 0 });
  }

  media(k: string, videoPackets: number): void {
    const s = this.kind(k);
    s.videoPackets += videoPackets;
    if (videoPackets > 0) s.withMedia++;
  }

  reason(to: Record<string, number>, r: string): void {
    to[r] = (to[r] ?? 0) + 1;
  }

  fail(what: string, e: unknown): void {
    this.failed++;
    if (this.failures.length < 20) this.failures.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
