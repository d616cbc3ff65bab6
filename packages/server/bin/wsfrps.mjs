#!/usr/bin/env -S node --max-semi-space-size=1 --heap-growing-percent=50
// The wsfrps command. The program is the esbuild bundle in ../dist (built by `npm ci` / `npm run build`,
// scripts/bundle-cli.mjs); this file exists before it is built, so that npm can link the bin at
// install time. The node flags above (split by `env -S`) keep a busy process small: a 1 MiB young
// generation (V8 grows it to 16 MiB per semi-space under hundreds of new connections a second), and
// an old generation allowed to grow to 1.5x its live size between V8's own incremental collections
// rather than up to 4x. (--optimize-for-size did as well for memory but doubled request p99.)
// docs/LIMITS.md "Process memory"; `npm start` passes the same.
import '../dist/wsfrps.mjs'
