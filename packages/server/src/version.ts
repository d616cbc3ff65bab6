import { readFileSync } from 'node:fs'

/**
 * This package's version, read from its package.json (one level above both `src/` and `dist/`), so
 * that the CLI, the landing page and the logs never disagree with what npm installed.
 */
export const VERSION: string = readVersion()

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0'
  } catch {
    return '0.0.0'
  }
}
