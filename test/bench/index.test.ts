import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runBench } from '../../bench/index.js'
import { tokenPool } from '../../bench/token-pool.js'

// The harness itself, on the smallest settings: every stack starts, takes load and shows up in the report.
// Figures are never asserted: this machine is shared and tiny runs say nothing about speed.
t.test('quick scenario (a): every stack answers and the report has its rows and ratios', async (t) => {
  const lines: string[] = []
  const markdown = await runBench(
    {
      scenarios: ['a'],
      quick: true,
      connections: 4,
      durationS: 1,
      warmupS: 0,
      runs: 1,
      tool: 'autocannon',
      pin: false,
      profile: false,
      poolSize: 20,
    },
    (line) => lines.push(line),
  )
  for (const stack of ['upstream alone', 'reply-from (no auth)', 'keygate gateway', 'express stack']) {
    t.match(
      markdown,
      new RegExp(`\\| ${stack.replace(/[()]/g, '\\$&')} \\| 1 \\| [\\d,]+ \\|.* \\| 0 / 0 \\|`),
      stack,
    )
  }
  t.match(markdown, /Run 1: gateway ÷ reply-from [\d.]+× \(≥ 1\.3 (met|MISSED)\)/)
  t.match(markdown, /- load: autocannon \(asked for\), 4 connections, 1 s per run/)
  t.ok(
    lines.some((l) => l.includes('scenario (a)')),
    'progress is reported',
  )
})

t.test('a token pool is minted once, then read from the cache', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-pool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const first = await tokenPool(12, dir)
  t.equal(first.tokens.length, 12)
  t.equal(new Set(first.tokens).size, 12, 'distinct tokens')
  t.notOk(first.cached)
  const second = await tokenPool(12, dir)
  t.ok(second.cached)
  t.same(second.tokens, first.tokens)
  t.equal(second.key.kid, first.key.kid)
})
