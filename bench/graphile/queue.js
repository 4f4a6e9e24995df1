#!/usr/bin/env node
// graphile-worker measured in the shape of its own perfTest, for
// `kepler-bench queue`: bulk-add no-op jobs with SQL (add_jobs over generate_series),
// time one process draining them (start-up measured separately, on one job),
// then sequential add_job → task start latencies at concurrency 1.
// Usage: DATABASE_URL=... node queue.js JOBS SAMPLES CONCURRENCY
// Prints one JSON object on stdout; times are in milliseconds.
"use strict";
const { Pool } = require("pg");
const { run, runOnce, runMigrations, Logger } = require("graphile-worker");

const [jobs, samples, concurrency] = process.argv.slice(2).map((n) => parseInt(n, 10));
const connectionString = process.env.DATABASE_URL;
const logger = new Logger(() => () => {});
const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;

// One add_jobs call with every job spec (the batch API, as graphile-worker's
// current perf test adds its jobs); add_job once per row takes minutes here.
async function addNoops(pool, count) {
  await pool.query(
    `select graphile_worker.add_jobs((
       select array_agg(json_populate_record(null::graphile_worker.job_spec,
         json_build_object('identifier', 'noop', 'payload', json_build_object('id', i))))
       from generate_series(1, $1::int) i))`,
    [count],
  );
}

async function drain(count) {
  const pool = new Pool({ connectionString });
  await addNoops(pool, count);
  await pool.end();
  const start = process.hrtime.bigint();
  await runOnce({
    connectionString,
    concurrency,
    maxPoolSize: concurrency + 1,
    logger,
    taskList: { noop: async () => {} },
  });
  return ms(start);
}

async function latencies() {
  const pool = new Pool({ connectionString, max: 4 });
  let started = null;
  const runner = await run({
    pgPool: pool,
    concurrency: 1,
    logger,
    taskList: { latency: async () => started && started() },
  });
  const client = await pool.connect();
  const one = async (id) => {
    const begun = new Promise((resolve) => (started = resolve));
    const start = process.hrtime.bigint();
    await client.query("select graphile_worker.add_job('latency', json_build_object('id', $1::int))", [id]);
    await begun;
    return ms(start);
  };
  for (let i = 0; i < 100; i++) await one(-i); // warm-up, as the perf test does
  const out = [];
  for (let i = 0; i < samples; i++) out.push(await one(i));
  client.release();
  await runner.stop();
  await pool.end();
  return out;
}

async function main() {
  await runMigrations({ connectionString, logger });
  const startup = await drain(1);
  const drainMs = await drain(jobs);
  const lat = await latencies();
  process.stdout.write(JSON.stringify({ startup_ms: startup, drain_ms: drainMs, latencies_ms: lat }) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
