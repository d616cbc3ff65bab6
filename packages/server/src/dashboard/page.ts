/**
 * The dashboard's HTML: a static shell that `app.js` (ui/app.ts) fills from the API. Nothing
 * dynamic is rendered on the server, so the page itself cannot carry client-controlled markup.
 */
import { escapeHtml } from '../landing.js'

/** Security headers of the page: only our own script, only our own API, no framing. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** Renders the page. `version` is the only value put in (escaped). */
export function renderDashboardPage(version: string): string {
  const v = escapeHtml(version)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>wsfrps dashboard</title>
<style>
  :root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6570; --bg: #f6f7f9; --card: #fff; --line: #d8dde3; --ok: #1a7f37; --off: #8c959f; --err: #cf222e; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8d96a0; --bg: #0d1117; --card: #161b22; --line: #30363d; --ok: #3fb950; --off: #6e7681; --err: #f85149; } }
  * { box-sizing: border-box; }
  body { margin: 0; padding: 1.25rem 1.5rem 2rem; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; margin-bottom: 1rem; }
  h1 { font-size: 1.3rem; margin: 0; }
  h1 small { color: var(--muted); font-weight: normal; font-size: .9rem; }
  h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
  #status { color: var(--muted); }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr)); gap: .6rem; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
  .card .value { font-size: 1.35rem; font-variant-numeric: tabular-nums; font-weight: 600; }
  .card .label { color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
  table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
  th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 600; font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
  td { font-variant-numeric: tabular-nums; }
  tr:last-child td { border-bottom: 0; }
  td.empty { color: var(--muted); text-align: center; }
  .scroll { overflow-x: auto; }
  code { font-size: .85em; }
  .badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: .8rem; color: #fff; background: var(--off); }
  .badge.ok { background: var(--ok); }
  .badge.err { background: var(--err); }
</style>
<script src="app.js" defer></script>
</head>
<body data-state="loading">
<header>
  <h1>wsfrps <small id="version">${v}</small></h1>
  <span id="status">loading…</span>
</header>
<section id="totals" class="cards" aria-label="server totals"></section>
<h2 id="clients-title">Clients</h2>
<div id="clients" class="scroll"></div>
<div id="proxies" class="scroll"></div>
<noscript><p>The dashboard needs JavaScript; the same data is at <a href="api/serverinfo">api/serverinfo</a>, <a href="api/clients">api/clients</a> and <a href="metrics">metrics</a>.</p></noscript>
</body>
</html>
`
}
