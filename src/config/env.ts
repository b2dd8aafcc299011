// `${NAME}` and `${NAME:-default}` in config string values, so secrets (camera passwords) can
// live in the environment or a docker-compose .env file instead of config.yaml.
// `$${` stands for a literal `${` (a password that really contains it).

export class MissingEnvError extends Error {
  constructor(readonly variable: string) {
    super(`environment variable "${variable}" is not set`);
    this.name = 'MissingEnvError';
  }
}

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Substitutes every reference in `text`; throws MissingEnvError for an unset one without default. */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv): string {
  if (!text.includes('${')) return text;
  return text.replace(REF, (_whole: string, name: string | undefined, fallback: string | undefined) => {
    if (name === undefined) return '${';
    const value = env[name];
    // Like the shell's `:-`: an empty variable takes the default too.
    if (value !== undefined && (value !== '' || fallback === undefined)) return value;
    if (fallback !== undefined) return fallback;
    throw new MissingEnvError(name);
  });
}
