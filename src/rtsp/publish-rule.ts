// Issue 12, item 8: who may ANNOUNCE into a stream by its name. Publishing replaces the stream's
// source for every viewer, so a stream that has a camera of its own takes a publisher only from
// someone who proved to be a user (RTSP credentials) or where the owner allowed it.

export interface PublishRuleInput {
  /** The stream has configured sources (a camera, a file); `sources: []` streams exist to be published into. */
  hasSources: boolean;
  /** rtsp.username/password are set: the ANNOUNCE passed them. */
  authConfigured: boolean;
  /** rtsp.allow_publish; undefined: the default. */
  allowPublish: boolean | undefined;
}

/** Why an external ANNOUNCE is refused (answered 403), or undefined when it may publish. */
export function publishRefusal(r: PublishRuleInput): string | undefined {
  if (!r.hasSources || r.allowPublish === true) return undefined;
  if (r.allowPublish === false) return 'the stream has configured sources and rtsp.allow_publish is false';
  if (r.authConfigured) return undefined;
  return 'the stream has configured sources: publishing into it needs rtsp.username/password or rtsp.allow_publish: true';
}
