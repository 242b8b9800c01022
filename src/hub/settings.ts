import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Where the Hub is, who we are, and where the shared cache lives: the same variables huggingface_hub reads. */
export interface HubSettings {
  endpoint: string;
  token?: string;
  /** The hub cache folder (`$HF_HUB_CACHE`, else `$HF_HOME/hub`). */
  cacheDir: string;
  /** `HF_HUB_OFFLINE=1`: answer from the cache only. */
  offline: boolean;
}

type Env = Record<string, string | undefined>;

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());
}

/** `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function defaultHfHome(env: Env = process.env): string {
  if (env.HF_HOME) return env.HF_HOME;
  const xdg = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'huggingface');
}

/** The hub cache under an HF home: `<hfHome>/hub`, unless `HF_HUB_CACHE` names another folder. */
export function hubCacheDir(hfHome?: string, env: Env = process.env): string {
  if (hfHome !== undefined) return path.join(hfHome, 'hub');
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return path.join(defaultHfHome(env), 'hub');
}

/**
 * The token: `HF_TOKEN`, else the one `hf auth login` stored in `<HF_HOME>/token`. Never printed or logged.
 */
export function defaultToken(env: Env = process.env, hfHome?: string): string | undefined {
  const fromEnv = env.HF_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = env.HF_TOKEN_PATH || path.join(hfHome ?? defaultHfHome(env), 'token');
  try {
    const t = fs.readFileSync(file, 'utf-8').trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

export function normalizeEndpoint(endpoint: string): string {
  return endpoint.trim().replace(/\/+$/, '');
}

/** Settings from explicit options, falling back to the environment. */
export function hubSettings(
  opts: { endpoint?: string; token?: string; hfHome?: string; cacheDir?: string; offline?: boolean } = {},
  env: Env = process.env,
): HubSettings {
  return {
    endpoint: normalizeEndpoint(opts.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT),
    token: opts.token ?? defaultToken(env, opts.hfHome),
    cacheDir: opts.cacheDir ?? hubCacheDir(opts.hfHome, env),
    offline: opts.offline ?? truthy(env.HF_HUB_OFFLINE),
  };
}
