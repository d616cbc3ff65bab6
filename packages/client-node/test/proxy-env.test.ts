/**
 * Proxy selection from the usual environment variables and the NO_PROXY rules (pure functions),
 * and the one-line errors for a malformed proxy URL.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { noProxyMatch, parseProxyUrl, proxyFromEnv, proxyLabel } from '@wsfrp/client-node'

const T = { timeout: 5_000 }

test('wss uses https_proxy/HTTPS_PROXY, ws uses http_proxy/HTTP_PROXY, both fall back to ALL_PROXY', T, () => {
  const env = { HTTPS_PROXY: 'http://s:3128', HTTP_PROXY: 'http://p:3128', ALL_PROXY: 'socks5://a:1080' }
  assert.deepEqual(proxyFromEnv('wss://example.com/~!frp', env), { proxy: { url: 'http://s:3128', source: 'HTTPS_PROXY' } })
  assert.deepEqual(proxyFromEnv('ws://example.com/~!frp', env), { proxy: { url: 'http://p:3128', source: 'HTTP_PROXY' } })
  assert.deepEqual(proxyFromEnv('ws://example.com/~!frp', { ALL_PROXY: 'socks5://a:1080' }), { proxy: { url: 'socks5://a:1080', source: 'ALL_PROXY' } })
  assert.deepEqual(proxyFromEnv('wss://example.com/', { all_proxy: 'socks5h://a' }), { proxy: { url: 'socks5h://a', source: 'all_proxy' } })
  // wss never falls back to the http_proxy variable: that one is for plain http.
  assert.equal(proxyFromEnv('wss://example.com/', { HTTP_PROXY: 'http://p:3128' }), undefined)
  assert.equal(proxyFromEnv('ws://example.com/', {}), undefined)
})

test('lower case wins over upper case (as curl), an empty value counts as unset, a bare host:port means http://', T, () => {
  assert.deepEqual(proxyFromEnv('wss://h/', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:1' }), { proxy: { url: 'http://lower:1', source: 'https_proxy' } })
  assert.deepEqual(proxyFromEnv('wss://h/', { https_proxy: '', HTTPS_PROXY: 'http://upper:1' }), { proxy: { url: 'http://upper:1', source: 'HTTPS_PROXY' } })
  assert.deepEqual(proxyFromEnv('wss://h/', { HTTPS_PROXY: ' proxy.corp:3128 ' }), { proxy: { url: 'http://proxy.corp:3128', source: 'HTTPS_PROXY' } })
})

test('NO_PROXY bypasses with the variable and entry that matched; loopback is not bypassed implicitly', T, () => {
  const env = { HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'internal.corp, 10.0.0.0/8' }
  assert.deepEqual(proxyFromEnv('wss://git.internal.corp/~!frp', env), { bypass: { source: 'HTTPS_PROXY', noProxy: 'NO_PROXY', entry: 'internal.corp' } })
  assert.deepEqual(proxyFromEnv('wss://10.1.2.3:8443/', env), { bypass: { source: 'HTTPS_PROXY', noProxy: 'NO_PROXY', entry: '10.0.0.0/8' } })
  assert.ok('proxy' in proxyFromEnv('wss://127.0.0.1/', env)!)
  assert.ok('proxy' in proxyFromEnv('wss://localhost/', env)!)
  assert.deepEqual(proxyFromEnv('ws://localhost:7000/', { http_proxy: 'http://p:1', no_proxy: 'localhost' }), {
    bypass: { source: 'http_proxy', noProxy: 'no_proxy', entry: 'localhost' },
  })
})

test('NO_PROXY entries: *, domains and .suffixes, host:port, IPs in any spelling, CIDR ranges', T, () => {
  const cases: [host: string, port: number, list: string, expected: string | undefined][] = [
    ['anything.example', 443, '*', '*'],
    ['example.com', 443, 'example.com', 'example.com'],
    ['a.b.example.com', 443, 'example.com', 'example.com'],
    ['notexample.com', 443, 'example.com', undefined],
    ['example.com', 443, '.example.com', undefined],
    ['a.example.com', 443, '.example.com', '.example.com'],
    ['a.example.com', 443, '*.example.com', '*.example.com'],
    ['EXAMPLE.com.', 443, 'Example.COM', 'Example.COM'],
    ['example.com', 8443, 'example.com:443', undefined],
    ['example.com', 443, 'example.com:443', 'example.com:443'],
    ['127.0.0.1', 7000, '127.0.0.1', '127.0.0.1'],
    ['127.0.0.2', 7000, '127.0.0.1', undefined],
    ['127.0.0.1', 7000, '127.0.0.1:7001', undefined],
    ['127.0.0.1', 7000, '127.0.0.1:7000', '127.0.0.1:7000'],
    ['::1', 7000, '0:0:0:0:0:0:0:1', '0:0:0:0:0:0:0:1'],
    ['[::1]', 7000, '[::1]:7000', '[::1]:7000'],
    ['::1', 7000, '[::1]:7001', undefined],
    ['192.168.4.5', 80, 'a.com 192.168.0.0/16', '192.168.0.0/16'],
    ['fd00::5', 80, 'fd00::/8', 'fd00::/8'],
    ['example.com', 80, '10.0.0.0/8,example.org', undefined],
    // An IP never matches a domain entry (no reverse lookups), a name never an IP entry.
    ['127.0.0.1', 80, 'localhost', undefined],
    ['localhost', 80, '127.0.0.1', undefined],
    ['host', 80, ' , ,host', 'host'],
  ]
  for (const [host, port, list, expected] of cases) {
    assert.equal(noProxyMatch(host, port, list), expected, `${host}:${port} against ${JSON.stringify(list)}`)
  }
})

test('a malformed proxy URL is one line that names the setting and never the password', T, () => {
  assert.throws(() => parseProxyUrl('ftp://bob:hunter2@proxy:2121', 'HTTPS_PROXY'), {
    message: 'HTTPS_PROXY: unsupported proxy scheme ftp: in ftp://bob@proxy:2121 (use http://, https://, socks5:// or socks5h://)',
  })
  assert.throws(() => parseProxyUrl('http://bob:hunter2@', 'transport.proxyURL'), (err: Error) => {
    assert.match(err.message, /^transport\.proxyURL /)
    assert.doesNotMatch(err.message, /hunter2/)
    return true
  })
  assert.throws(() => parseProxyUrl('not a url', 'ALL_PROXY'), { message: 'ALL_PROXY is not a URL (expected http://[user:password@]host:port or socks5://…)' })
  assert.throws(() => parseProxyUrl('http://proxy:3128/path', 'HTTP_PROXY'), { message: 'HTTP_PROXY: the proxy URL http://proxy:3128 must not have a path' })
  assert.throws(() => parseProxyUrl(`socks5://${'u'.repeat(256)}:p@proxy`, 'ALL_PROXY'), { message: 'ALL_PROXY: SOCKS5 user name and password must be at most 255 bytes each' })
  assert.equal(proxyLabel(parseProxyUrl('socks5h://bob:pw@[::1]:1080')), 'socks5h://bob@[::1]:1080')
  assert.equal(proxyLabel(parseProxyUrl('https://proxy.corp')), 'https://proxy.corp')
})
