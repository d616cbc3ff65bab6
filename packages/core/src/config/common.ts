/** Sections that server and client share: `auth` and `log`. */
import {
  type Ctx,
  type KeyHints,
  type Table,
  describeValue,
  own,
  readBool,
  readEnum,
  readInt,
  readString,
  readSubTable,
} from './check.js'
import { joinConfigPath } from './issues.js'
import type { AuthConfig, AuthScope, LogConfig, LogLevel } from './types.js'

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error']
const AUTH_SCOPES: readonly AuthScope[] = ['HeartBeats', 'NewWorkConns']

export function readLog(ctx: Ctx, root: Table | undefined, hints: KeyHints): LogConfig {
  const t = readSubTable(ctx, root, 'log', '', '', ['level', 'to', 'maxDays', 'disablePrintColor'], hints)
  return {
    level: readEnum(ctx, t, 'level', 'log', 'info', LOG_LEVELS),
    to: readString(ctx, t, 'to', 'log', 'console', { nonEmpty: true }),
    maxDays: readInt(ctx, t, 'maxDays', 'log', 3, { min: 0, unit: 'days' }),
    disablePrintColor: readBool(ctx, t, 'disablePrintColor', 'log', false),
  }
}

/** Reads `auth`; `extraKeys` are further keys the caller reads itself (the server's `users`). */
export function readAuth(ctx: Ctx, root: Table | undefined, hints: KeyHints, extraKeys: readonly string[] = []): AuthConfig {
  const t = readSubTable(ctx, root, 'auth', '', '', ['method', 'token', 'additionalScopes', ...extraKeys], hints)
  const method = readEnum(ctx, t, 'method', 'auth', 'token', ['token'] as const, {
    oidc: 'only "token" is supported ("oidc" is not supported yet)',
  })
  const token = readString(ctx, t, 'token', 'auth', '', { secret: true })
  const additionalScopes: AuthScope[] = []
  const raw = t === undefined ? undefined : own(t, 'additionalScopes')
  const p = 'auth.additionalScopes'
  if (raw !== undefined) {
    if (!Array.isArray(raw)) {
      ctx.add(p, `must be an array of "HeartBeats"/"NewWorkConns", got ${describeValue(raw)}`)
    } else {
      raw.forEach((s: unknown, i) => {
        if (typeof s !== 'string' || !(AUTH_SCOPES as readonly string[]).includes(s)) {
          ctx.add(joinConfigPath(p, i), `must be "HeartBeats" or "NewWorkConns", got ${describeValue(s)}`)
        } else if (additionalScopes.includes(s as AuthScope)) {
          ctx.add(joinConfigPath(p, i), `"${s}" is listed twice`)
        } else {
          additionalScopes.push(s as AuthScope)
        }
      })
    }
  }
  return { method, token, additionalScopes }
}

/** Host names and IP literals: no scheme, no path, no whitespace. */
export function checkHost(s: string): string | undefined {
  if (s === '') return 'must not be empty'
  if (s.includes('://')) return 'must be a host name or IP address, not a URL'
  if (/[\s/?#@]/.test(s)) return 'must be a host name or IP address'
  return undefined
}

/** Rejects control characters, which would corrupt log lines and wire messages. */
export function checkPrintable(s: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s) ? 'must not contain control characters' : undefined
}
