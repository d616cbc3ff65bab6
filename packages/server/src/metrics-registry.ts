/**
 * The Prometheus exporter behind `/metrics`. A module of its own so that prom-client is loaded on
 * the first scrape only (the dashboard imports this lazily): a server nobody scrapes does not pay
 * its ~10 MiB of resident memory.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { ServerMetrics } from './metrics.js'

/** What the Prometheus exporter reads from a server. */
export interface MetricsSource {
  readonly metrics: ServerMetrics
  readonly role: { readonly controls: ReadonlyMap<string, unknown> }
  /** Proxy types the server serves (every one gets a `frp_server_proxy_counts` series, 0 included). */
  readonly proxies: { readonly types: string[] }
}

/**
 * A Prometheus registry of its own (not prom-client's global one, so several servers in one process
 * do not collide) whose metrics are read from `source` at scrape time: counting stays plain
 * additions, and prom-client's label hashing runs once per scrape, not per chunk.
 *
 * frp's names (namespace `frp`, subsystem `server`, frp-wire-protocol.md §11.2) plus wsfrp's own.
 */
export function createMetricsRegistry(source: MetricsSource): Registry {
  const registry = new Registry()
  const registers = [registry]
  const m = source.metrics
  new Gauge({
    name: 'frp_server_client_counts',
    help: 'Clients logged in now.',
    registers,
    collect() {
      this.set(source.role.controls.size)
    },
  })
  new Gauge({
    name: 'frp_server_proxy_counts',
    help: 'Proxies held by clients now, by type.',
    labelNames: ['type'],
    registers,
    collect() {
      this.reset()
      const counts = new Map<string, number>(source.proxies.types.map((t) => [t, 0]))
      for (const p of m.proxies('online')) counts.set(p.type, (counts.get(p.type) ?? 0) + 1)
      for (const [type, n] of counts) this.set({ type }, n)
    },
  })
  new Gauge({
    name: 'frp_server_connection_counts',
    help: 'User connections open now, by proxy.',
    labelNames: ['name', 'type'],
    registers,
    collect() {
      this.reset()
      for (const p of m.proxies('online')) this.set({ name: p.name, type: p.type }, p.curConns)
    },
  })
  new Counter({
    name: 'frp_server_traffic_in',
    help: 'Bytes from users towards the client, by proxy, since the server started.',
    labelNames: ['name', 'type'],
    registers,
    collect() {
      // Set from our own totals at each scrape (they only grow; offline proxies keep their series).
      this.reset()
      for (const p of m.proxies('all')) this.inc({ name: p.name, type: p.type }, p.trafficIn)
    },
  })
  new Counter({
    name: 'frp_server_traffic_out',
    help: 'Bytes from the client back to users, by proxy, since the server started.',
    labelNames: ['name', 'type'],
    registers,
    collect() {
      this.reset()
      for (const p of m.proxies('all')) this.inc({ name: p.name, type: p.type }, p.trafficOut)
    },
  })
  new Counter({
    name: 'wsfrp_login_failures_total',
    help: 'Refused logins (wrong token, client too old, refused by policy).',
    registers,
    collect() {
      this.reset()
      this.inc(m.totals().loginFailures)
    },
  })
  new Gauge({
    name: 'wsfrp_transports',
    help: 'Open WebSocket transports (yamux sessions).',
    registers,
    collect() {
      this.set(m.sessionTotals().transports)
    },
  })
  new Gauge({
    name: 'wsfrp_yamux_streams',
    help: 'Open yamux streams, all sessions.',
    registers,
    collect() {
      this.set(m.sessionTotals().streams)
    },
  })
  new Gauge({
    name: 'wsfrp_session_receive_buffer_bytes',
    help: 'Bytes waiting in yamux stream receive buffers, all sessions.',
    registers,
    collect() {
      this.set(m.sessionTotals().receiveBufferedBytes)
    },
  })
  return registry
}
