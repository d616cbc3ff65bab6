/**
 * Routes NewProxy/CloseProxy to the manager of the proxy's type (tcp now; http vhosts later) and
 * keeps proxy names unique across every client, as frps does.
 */
import { noopLogger, type ControlHandle, type Logger, type NewProxy, type ProxyManager } from '@wsfrp/core'

/** A registered proxy, as the status page and dashboard see it. */
export interface ProxyRecord {
  readonly name: string
  readonly type: string
  readonly runId: string
  /** NewProxyResp.remote_addr once started (tcp: ":<port>"); `""` while starting. */
  remoteAddr: string
  readonly since: number
}

export interface ProxyRouterOptions {
  logger?: Logger
  /**
   * Send the real reason of a refused proxy to the client (frp `detailedErrorsToClient`, default
   * true). When false the client gets a generic text and the reason goes only to the server log.
   */
  detailedErrors?: boolean
}

interface Owner {
  control: ControlHandle
  manager: ProxyManager
  record: ProxyRecord
}

export class ProxyRouter implements ProxyManager {
  private readonly managers = new Map<string, ProxyManager>()
  private readonly owners = new Map<string, Owner>()
  private readonly log: Logger

  constructor(private readonly opts: ProxyRouterOptions = {}) {
    this.log = opts.logger ?? noopLogger
  }

  /** Serves proxies of `type` (frp's proxy_type: "tcp", "http", …) with `manager`; replaces an earlier one. */
  setManager(type: string, manager: ProxyManager): void {
    this.managers.set(type, manager)
  }

  /** The proxy types this server serves. */
  get types(): string[] {
    return [...this.managers.keys()]
  }

  /** Every registered proxy (started or starting). */
  get proxies(): ProxyRecord[] {
    return [...this.owners.values()].map((o) => o.record)
  }

  get size(): number {
    return this.owners.size
  }

  async register(proxy: NewProxy & { proxy_name: string }, control: ControlHandle): Promise<string> {
    const name = proxy.proxy_name
    const type = proxy.proxy_type || 'tcp'
    const manager = this.managers.get(type)
    if (manager === undefined) throw new Error(`proxy type ${type} is not supported by this server yet`)
    if (this.owners.has(name)) throw new Error(`proxy [${name}] is already in use`)
    const record: ProxyRecord = { name, type, runId: control.runId, remoteAddr: '', since: Date.now() }
    const owner: Owner = { control, manager, record }
    this.owners.set(name, owner)
    try {
      record.remoteAddr = await manager.register(proxy, control)
      return record.remoteAddr
    } catch (err) {
      if (this.owners.get(name) === owner) this.owners.delete(name)
      if (this.opts.detailedErrors === false) {
        this.log.warn('proxy refused', { runId: control.runId, proxy: name, type, error: err instanceof Error ? err.message : String(err) })
        throw new Error('the server could not start this proxy (details are in the server log)')
      }
      throw err
    }
  }

  unregister(proxyName: string, control: ControlHandle): void {
    const owner = this.owners.get(proxyName)
    if (owner === undefined || owner.control !== control) return
    this.owners.delete(proxyName)
    try {
      owner.manager.unregister(proxyName, control)
    } catch (err) {
      this.log.warn('error while closing a proxy', { runId: control.runId, proxy: proxyName, error: err instanceof Error ? err.message : String(err) })
    }
  }
}
