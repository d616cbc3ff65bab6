/**
 * Tenants: the users of `[[auth.users]]`. A client that logged in with a user's token (the session
 * role records it as `ControlHandle.tenant`) may only register what that user's entry allows
 * (proxy types, ports, subdomains and custom domains, a number of proxies) and may only hold a
 * number of user connections at once. Clients of the shared `auth.token` are not restricted here.
 *
 * {@link Tenants.guard} wraps the ProxyManager the session role talks to, so every proxy type is
 * covered without the managers knowing; the REST API scopes what a user sees with
 * {@link tenantOf} / {@link visibleTo}.
 */
import { ForwardingConn, WsfrpError, constantTimeEqual, isPortAllowed, noopLogger, type AuthUser, type Conn, type ControlHandle, type Logger, type NewProxy, type PortRange, type ProxyManager } from '@wsfrp/core'

/**
 * The `[[auth.users]]` name a client logged in as, or undefined for a client of the shared token
 * (full rights). For the dashboard and the API: a viewer authenticated as user `u` should see a
 * client, its proxies and their traffic only when `tenantOf(control) === u`.
 */
export function tenantOf(control: Pick<ControlHandle, 'tenant'>): string | undefined {
  return control.tenant
}

/**
 * True when `viewer` may see `control` (and its proxies): an administrator (`viewer` undefined)
 * sees everything, a user only its own clients.
 */
export function visibleTo(viewer: string | undefined, control: Pick<ControlHandle, 'tenant'>): boolean {
  return viewer === undefined || control.tenant === viewer
}

/** What one user holds now. */
export interface TenantUsage {
  /** Proxies registered (or being registered) by the user's clients. */
  proxies: number
  /** User connections open through the user's proxies (tcp connections, http work connections). */
  connections: number
}

export interface TenantsOptions {
  users: readonly AuthUser[]
  /** The server's `subDomainHost`, to tell which host a `subdomain` stands for in messages. */
  subDomainHost?: string
  /** Hide the reason of a refused proxy from the client (frp `detailedErrorsToClient = false`). */
  detailedErrors?: boolean
  logger?: Logger
}

/** Rules a generated user (e.g. a browser-demo session) gets on top of an `[[auth.users]]` entry. */
export interface GeneratedUserRules {
  /**
   * Every proxy name must start with this (the demo: `demo-<id>.`, what frp's `user` prefix gives),
   * so that a visitor cannot take a name the operator's clients use.
   */
  proxyNamePrefix?: string
  /** Refuse load-balancing groups (`group`), which would join another user's proxies. */
  noGroups?: boolean
}

interface State {
  readonly user: AuthUser
  readonly rules: GeneratedUserRules
  /** Proxy name → the (unwrapped) control holding it. */
  readonly proxies: Map<string, ControlHandle>
  connections: number
}

/** Host patterns: exact, `*.suffix` (anything below suffix, at any depth) or `*`. */
function domainAllowed(domain: string, patterns: readonly string[]): boolean {
  const d = domain.toLowerCase()
  return patterns.some((p) => p === '*' || p === d || (p.startsWith('*.') && d.endsWith(p.slice(1)) && d.length > p.length - 1))
}

/** The per-user policy; see the module comment. */
export class Tenants {
  private readonly states = new Map<string, State>()
  private readonly wrapped = new WeakMap<ControlHandle, ControlHandle>()
  private readonly log: Logger

  constructor(private readonly opts: TenantsOptions) {
    this.log = opts.logger ?? noopLogger
    for (const u of opts.users) this.states.set(u.name, { user: u, rules: {}, proxies: new Map(), connections: 0 })
  }

  /**
   * Adds a user at run time, held to the same checks as a configured one plus `rules`. The server's
   * generated users (the browser demo's sessions) come in here; the session role gets the same
   * name and token through `FrpServerRole.addUser`.
   *
   * @throws WsfrpError `ERR_CONFIG` when a user of that name exists.
   */
  add(user: AuthUser, rules: GeneratedUserRules = {}): void {
    if (this.states.has(user.name)) throw new WsfrpError('ERR_CONFIG', `user [${user.name}] already exists`)
    this.states.set(user.name, { user, rules, proxies: new Map(), connections: 0 })
  }

  /**
   * Forgets a user added with {@link add}. Its clients must be gone (or be closed right after): a
   * client of an unknown user is no longer restricted here.
   */
  remove(name: string): boolean {
    return this.states.delete(name)
  }

  /** The names of the configured users. */
  get names(): string[] {
    return [...this.states.keys()]
  }

  /**
   * True when `token` is user `name`'s token (constant-time compare), e.g. for an API that lets a
   * user sign in with Basic auth as `name:token` and then shows it only its own clients.
   */
  authenticate(name: string, token: string): boolean {
    const s = this.states.get(name)
    // An unknown name still costs one comparison, so timing does not tell names apart.
    return constantTimeEqual(s?.user.token ?? '\u0000', token) && s !== undefined
  }

  /** What `name` holds now, or undefined for an unknown user. */
  usage(name: string): TenantUsage | undefined {
    const s = this.states.get(name)
    return s === undefined ? undefined : { proxies: s.proxies.size, connections: s.connections }
  }

  /**
   * The extra port ranges a client's tcp proxies are held to (its user's `allowPorts`), or
   * undefined when there are none. The tcp manager picks `remote_port = 0` ports inside them.
   */
  allowPortsOf(control: ControlHandle): readonly PortRange[] | undefined {
    const s = control.tenant === undefined ? undefined : this.states.get(control.tenant)
    return s === undefined || s.user.allowPorts.length === 0 ? undefined : s.user.allowPorts
  }

  /** Wraps `inner` so that users' proxies are checked at registration and their connections counted. */
  guard(inner: ProxyManager): ProxyManager {
    return {
      register: async (proxy, control) => {
        const s = control.tenant === undefined ? undefined : this.states.get(control.tenant)
        if (s === undefined) return inner.register(proxy, control)
        const name = proxy.proxy_name
        const refusal = this.check(s, proxy)
        if (refusal !== undefined) {
          this.log.warn('proxy refused by the user\'s restrictions', { tenant: s.user.name, runId: control.runId, proxy: name, error: refusal })
          throw new WsfrpError('ERR_PROXY', this.opts.detailedErrors === false ? 'the server could not start this proxy (details are in the server log)' : refusal)
        }
        // Counted before the first await, so that concurrent NewProxy cannot pass the limit together.
        s.proxies.set(name, control)
        try {
          return await inner.register(proxy, this.wrap(s, control))
        } catch (err) {
          if (s.proxies.get(name) === control) s.proxies.delete(name)
          throw err
        }
      },
      unregister: (name, control) => {
        const s = control.tenant === undefined ? undefined : this.states.get(control.tenant)
        if (s === undefined) {
          inner.unregister(name, control)
          return
        }
        if (s.proxies.get(name) === control) s.proxies.delete(name)
        inner.unregister(name, this.wrap(s, control))
      },
    }
  }

  /** Why `s.user` may not register `proxy`, or undefined. */
  private check(s: State, proxy: NewProxy & { proxy_name: string }): string | undefined {
    const u = s.user
    const who = `user [${u.name}]`
    const type = proxy.proxy_type || 'tcp'
    if (!(u.allowTypes as readonly string[]).includes(type)) return `proxy type [${type}] is not allowed for ${who} (allowed: ${u.allowTypes.join(', ')})`
    if (type === 'tcp') {
      const port = proxy.remote_port ?? 0
      if (typeof port === 'number' && port !== 0 && u.allowPorts.length > 0 && !isPortAllowed(port, u.allowPorts)) return `port ${port} is not allowed for ${who}`
    }
    if (type === 'http' && u.subdomains !== undefined && u.domains !== undefined) {
      const sub = typeof proxy.subdomain === 'string' ? proxy.subdomain.trim().toLowerCase() : ''
      if (sub !== '' && !u.subdomains.includes('*') && !u.subdomains.includes(sub)) {
        const host = this.opts.subDomainHost ? ` (${sub}.${this.opts.subDomainHost})` : ''
        return `subdomain [${sub}]${host} is not allowed for ${who}`
      }
      for (const d of Array.isArray(proxy.custom_domains) ? proxy.custom_domains : []) {
        if (typeof d !== 'string' || d.trim() === '') continue
        if (!domainAllowed(d.trim(), u.domains)) return `custom domain [${d}] is not allowed for ${who}`
      }
    }
    const prefix = s.rules.proxyNamePrefix
    if (prefix !== undefined && !proxy.proxy_name.startsWith(prefix)) return `proxy names of ${who} must start with "${prefix}"`
    if (s.rules.noGroups === true && typeof proxy.group === 'string' && proxy.group !== '') return `load-balancing groups are not allowed for ${who}`
    if (u.maxProxies > 0 && s.proxies.size >= u.maxProxies) return `exceed the max proxies of ${who}: ${s.proxies.size} already registered (maxProxies = ${u.maxProxies})`
    return undefined
  }

  /** The control handed to the proxy side: its work connections count against the user's maxConnections. */
  private wrap(s: State, control: ControlHandle): ControlHandle {
    let w = this.wrapped.get(control)
    if (w !== undefined) return w
    const max = s.user.maxConnections
    const startWorkConn: ControlHandle['startWorkConn'] = async (name, info) => {
      if (max > 0 && s.connections >= max) {
        throw new WsfrpError('ERR_LIMIT', `user [${s.user.name}] already has ${s.connections} connections open (maxConnections = ${max})`)
      }
      // Counted while waiting for the work connection too: a flood of waiting users is bounded as well.
      s.connections++
      let conn: Conn
      try {
        conn = await control.startWorkConn(name, info)
      } catch (err) {
        s.connections--
        throw err
      }
      return new ReleasingConn(conn, () => s.connections--)
    }
    // A Proxy rather than a copy: whatever ControlHandle grows later passes through unchanged.
    w = new Proxy(control, {
      get(target, prop) {
        if (prop === 'startWorkConn') return startWorkConn
        const v: unknown = Reflect.get(target, prop, target)
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    this.wrapped.set(control, w)
    return w
  }
}

/** A user connection that gives its slot back (`release`, exactly once) when it is finished. */
class ReleasingConn extends ForwardingConn {
  constructor(
    inner: Conn,
    private readonly release: () => void,
  ) {
    super(inner)
  }

  protected override onFinish(): void {
    this.release()
  }
}
