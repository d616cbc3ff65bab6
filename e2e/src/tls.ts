/**
 * A throw-away test PKI, made at test time with the system's `openssl` (node:crypto can make keys
 * but cannot sign certificates): one CA and server certificates it signed. Nothing is committed;
 * the files live in the caller's temp dir and die with it.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TestCa {
  dir: string
  /** The CA certificate (PEM): what clients trust (`transport.tls.trustedCaFile`). */
  caFile: string
  caKeyFile: string
  /** Signs a server certificate for these names (`DNS:` for names, `IP:` for addresses). */
  issue(name: string, subjectAltNames: string[]): ServerCert
}

export interface ServerCert {
  certFile: string
  keyFile: string
  cert: Buffer
  key: Buffer
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' })
  if (r.error !== undefined) throw new Error(`openssl ${args[0]}: ${r.error.message} (apt-get install openssl)`)
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited with ${r.status}:\n${r.stderr}`)
}

/** True when an `openssl` binary runs. */
export function hasOpenssl(): boolean {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' })
  return r.error === undefined && r.status === 0
}

/** A new CA (EC P-256, valid 2 days) in `dir/pki`. */
export function createTestCa(dir: string, commonName = 'wsfrp e2e test CA'): TestCa {
  const pki = join(dir, 'pki')
  mkdirSync(pki, { recursive: true })
  const caFile = join(pki, 'ca.pem')
  const caKeyFile = join(pki, 'ca.key')
  openssl(
    [
      'req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-keyout', caKeyFile, '-out', caFile, '-days', '2', '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    pki,
  )
  let serial = 1
  return {
    dir: pki,
    caFile,
    caKeyFile,
    issue(name, subjectAltNames) {
      const keyFile = join(pki, `${name}.key`)
      const csr = join(pki, `${name}.csr`)
      const certFile = join(pki, `${name}.pem`)
      const ext = join(pki, `${name}.ext`)
      writeFileSync(
        ext,
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature',
          'extendedKeyUsage=serverAuth',
          `subjectAltName=${subjectAltNames.join(',')}`,
        ].join('\n') + '\n',
      )
      openssl(['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`], pki)
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKeyFile, '-set_serial', String(++serial), '-days', '2', '-extfile', ext, '-out', certFile], pki)
      return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) }
    },
  }
}
