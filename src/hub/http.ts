import { T5clsError } from '../errors.js';
import type { RepoRef } from './cache.js';

export interface RetryOptions {
  /** Tries per request, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 8000 };
export const DEFAULT_TIMEOUT_MS = 10_000;

export interface HttpSettings {
  endpoint: string;
  token?: string;
  retry: RetryOptions;
  /** Time allowed for the response headers, and for each gap between two pieces of a body. */
  timeoutMs: number;
  log?: (line: string) => void;
}

/** What a request is about, for error messages. */
export interface RequestContext {
  repo: RepoRef;
  revision: string;
  file?: string;
}

/** A transient failure: no connection, a time-out, a dropped connection. Retried, never shown as such. */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'NetworkError';
  }
}

/** The Hub could not be reached at all. `hint` names the offline alternative for the command at hand. */
export class HubUnreachableError extends T5clsError {
  constructor(endpoint: string, detail: string, hint?: string) {
    super(`Could not reach the Hugging Face Hub at ${endpoint} (${detail})${hint ? `; ${hint}` : ''}`, 1);
  }
}

/** An answer from the Hub that means the request cannot succeed: not found, not allowed, or failing for too long. */
export class HubError extends T5clsError {
  constructor(
    message: string,
    readonly status: number,
    readonly errorCode: string | undefined,
    exitCode = 1,
  ) {
    super(message, exitCode);
  }
}

/** A URL fit for messages: signed storage URLs carry credentials in their query, so it is dropped. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.replace(/\?.*$/, '');
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function networkCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; depth < 5 && cur && typeof cur === 'object'; depth++) {
    const c = cur as { code?: unknown; errors?: unknown[]; cause?: unknown };
    if (typeof c.code === 'string') return c.code;
    if (Array.isArray(c.errors) && c.errors.length > 0) cur = c.errors[0];
    else cur = c.cause;
  }
  return undefined;
}

function causeMessage(e: Error): string | undefined {
  const c = (e as { cause?: unknown }).cause;
  return c instanceof Error && c.message ? c.message : undefined;
}

/** Turns whatever fetch or a body read threw into a NetworkError, or rethrows what is not a network failure. */
export function asNetworkError(e: unknown, timedOut: boolean): NetworkError {
  if (e instanceof NetworkError) return e;
  if (timedOut) return new NetworkError('timed out', 'ETIMEDOUT');
  if (e instanceof TypeError || (e instanceof Error && (e.name === 'AbortError' || e.name === 'SocketError'))) {
    const code = networkCode(e);
    const detail =
      code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host name not found'
        : code === 'ECONNREFUSED'
          ? 'connection refused'
          : code === 'UND_ERR_SOCKET' || code === 'ECONNRESET'
            ? 'connection dropped'
            : code
              ? code
              : oneLine(causeMessage(e) ?? e.message);
    return new NetworkError(detail, code);
  }
  throw e;
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function backoffDelay(retry: RetryOptions, attempt: number): number {
  return Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

export interface Sent {
  res: Response;
  controller: AbortController;
  /** Set when our own timer aborted the request. */
  timedOut: () => boolean;
}

/**
 * One HTTP request, redirects not followed. The token goes only to the Hub's own origin: storage hosts get signed
 * URLs and must never see it.
 */
export async function sendOnce(
  http: HttpSettings,
  method: 'GET' | 'HEAD',
  url: string,
  headers: Record<string, string> = {},
): Promise<Sent> {
  const h: Record<string, string> = { 'user-agent': 't5cls (node)', ...headers };
  if (http.token && sameOrigin(url, http.endpoint)) h.authorization = `Bearer ${http.token}`;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, http.timeoutMs);
  try {
    const res = await fetch(url, { method, headers: h, redirect: 'manual', signal: controller.signal });
    return { res, controller, timedOut: () => timedOut };
  } catch (e) {
    throw asNetworkError(e, timedOut);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a body piece by piece; a gap longer than the time-out aborts it as a time-out. */
export async function readBody(http: HttpSettings, sent: Sent, onChunk: (chunk: Uint8Array) => void): Promise<void> {
  if (!sent.res.body) return;
  const reader = sent.res.body.getReader();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      sent.controller.abort();
    }, http.timeoutMs);
  };
  try {
    for (;;) {
      arm();
      const { done, value } = await reader.read();
      if (done) break;
      if (value && value.byteLength > 0) onChunk(value);
    }
  } catch (e) {
    throw asNetworkError(e, timedOut || sent.timedOut());
  } finally {
    clearTimeout(timer);
  }
}

export async function discardBody(sent: Sent): Promise<void> {
  try {
    await sent.res.body?.cancel();
  } catch {
    // the body is not wanted
  }
}

/** The one-line error for a response that ends a request. */
export function hubHttpError(http: HttpSettings, ctx: RequestContext, res: Response, url: string): HubError {
  const code = res.headers.get('x-error-code') ?? undefined;
  const serverMsg = res.headers.get('x-error-message');
  const repoName = `${ctx.repo.type} repository '${ctx.repo.id}'`;
  const fileOf = ctx.file ? `file '${ctx.file}' of ` : '';
  const status = res.status;
  const statusText = `${status}${res.statusText ? ` ${res.statusText}` : ''}`;
  const tokenAdvice = http.token
    ? 'check that the token in HF_TOKEN is valid and has access to it'
    : 'set HF_TOKEN to an access token that has access to it';
  if (!sameOrigin(url, http.endpoint)) {
    return new HubError(
      `Download of ${fileOf}${repoName} failed: the storage host answered ${statusText} for ${displayUrl(url)}`,
      status,
      code,
    );
  }
  switch (code) {
    case 'RepoNotFound':
      return new HubError(
        `${cap(repoName)} was not found on ${http.endpoint} (${statusText}); if it is private or gated, ${tokenAdvice}`,
        status,
        code,
        2,
      );
    case 'RevisionNotFound':
      return new HubError(`Revision '${ctx.revision}' was not found in ${repoName} (${statusText})`, status, code, 2);
    case 'EntryNotFound':
      return new HubError(
        `File '${ctx.file ?? displayUrl(url)}' was not found in ${repoName} at revision '${ctx.revision}' (${statusText})`,
        status,
        code,
        2,
      );
    case 'GatedRepo':
      return new HubError(
        `${cap(repoName)} is gated (${statusText}): request access at ${repoPage(http.endpoint, ctx.repo)} and ${tokenAdvice}`,
        status,
        code,
      );
  }
  const detail = serverMsg ? `: ${oneLine(serverMsg)}` : '';
  if (status === 401 || status === 403) {
    return new HubError(`The Hub refused access to ${fileOf}${repoName} (${statusText}${detail}); ${tokenAdvice}`, status, code);
  }
  if (status === 404) {
    return new HubError(
      `${cap(fileOf || '')}${fileOf ? repoName : cap(repoName)} was not found (404 for ${displayUrl(url)})`,
      status,
      code,
      2,
    );
  }
  if (isRetryableStatus(status)) {
    return new HubError(
      `The Hub kept failing for ${fileOf}${repoName} (${statusText}${detail} for ${displayUrl(url)} after ` +
        `${http.retry.attempts} tries); try again later`,
      status,
      code,
    );
  }
  return new HubError(`The Hub answered ${statusText}${detail} for ${displayUrl(url)}`, status, code);
}

function cap(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}

export function repoPage(endpoint: string, repo: RepoRef): string {
  return `${endpoint}/${repo.type === 'dataset' ? 'datasets/' : ''}${repo.id}`;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Follow redirects that stay on the same origin (renamed repos, /api/resolve-cache/). */
  followSameOrigin: boolean;
  /** Hint appended to the unreachable error. */
  offlineHint?: string;
}

/**
 * A request with retries and back-off on network failures, time-outs, 408, 429 and 5xx. Answers 2xx, or 3xx that
 * it does not follow; anything else becomes a one-line HubError. The body is left unread for the caller.
 */
export async function hubRequest(
  http: HttpSettings,
  ctx: RequestContext,
  method: 'GET' | 'HEAD',
  url: string,
  opts: RequestOptions,
): Promise<{ sent: Sent; url: string }> {
  let attempt = 0;
  let redirects = 0;
  let lastNetwork: NetworkError | undefined;
  for (;;) {
    attempt++;
    let sent: Sent;
    try {
      sent = await sendOnce(http, method, url, opts.headers);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      lastNetwork = e;
      // A host name that does not resolve will not resolve a second later (offline, or a wrong HF_ENDPOINT):
      // answer at once. Time-outs, dropped connections and refusals are retried.
      if (e.code === 'ENOTFOUND') {
        throw new HubUnreachableError(
          new URL(url).origin === new URL(http.endpoint).origin ? http.endpoint : new URL(url).origin,
          e.message,
          opts.offlineHint,
        );
      }
      if (attempt >= http.retry.attempts) break;
      http.log?.(`Hub request failed (${e.message}); retrying (${attempt}/${http.retry.attempts - 1})`);
      await sleep(backoffDelay(http.retry, attempt));
      continue;
    }
    const { res } = sent;
    if (res.status >= 300 && res.status < 400 && opts.followSameOrigin) {
      const loc = res.headers.get('location');
      if (loc) {
        const target = new URL(loc, url).toString();
        if (sameOrigin(target, url)) {
          await discardBody(sent);
          if (++redirects > 10) throw new HubError(`Too many redirects for ${displayUrl(url)}`, res.status, undefined);
          url = target;
          attempt--;
          continue;
        }
      }
    }
    if (res.ok || (res.status >= 300 && res.status < 400)) return { sent, url };
    if (isRetryableStatus(res.status) && attempt < http.retry.attempts) {
      await discardBody(sent);
      http.log?.(`Hub answered ${res.status} for ${displayUrl(url)}; retrying (${attempt}/${http.retry.attempts - 1})`);
      await sleep(backoffDelay(http.retry, attempt));
      continue;
    }
    await discardBody(sent);
    throw hubHttpError(http, ctx, res, url);
  }
  throw new HubUnreachableError(
    new URL(url).origin === new URL(http.endpoint).origin ? http.endpoint : new URL(url).origin,
    `${lastNetwork?.message ?? 'no answer'} after ${http.retry.attempts} tries`,
    opts.offlineHint,
  );
}

/** GET and parse a JSON answer from the Hub API; a body cut short is fetched again. */
export async function hubJson(http: HttpSettings, ctx: RequestContext, url: string, offlineHint?: string): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    const { sent, url: finalUrl } = await hubRequest(http, ctx, 'GET', url, {
      followSameOrigin: true,
      headers: { accept: 'application/json' },
      offlineHint,
    });
    if (!sent.res.ok) {
      await discardBody(sent);
      throw new HubError(
        `The Hub answered ${sent.res.status} for ${displayUrl(finalUrl)} where JSON was expected`,
        sent.res.status,
        undefined,
      );
    }
    const chunks: Uint8Array[] = [];
    try {
      await readBody(http, sent, (c) => chunks.push(c));
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      if (attempt >= http.retry.attempts) {
        throw new HubUnreachableError(http.endpoint, `${e.message} while reading ${displayUrl(finalUrl)}`, offlineHint);
      }
      await sleep(backoffDelay(http.retry, attempt));
      continue;
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf-8'));
    } catch {
      throw new HubError(`The Hub answered ${displayUrl(finalUrl)} with something that is not JSON`, sent.res.status, undefined);
    }
  }
}
