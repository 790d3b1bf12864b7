// Preloaded (`node --import`) into each process the supervisor (supervisor.ts) starts: when the
// supervisor goes away without stopping it (killed, crashed), the IPC channel closes and the
// process stops itself as on SIGTERM, so no worker, listener or API is left behind holding its
// ports. Its log pipe is gone too, so one that does not finish stopping in time exits anyway.
// Plain JavaScript: Temporal's workflow threads inherit the preload and load no TypeScript.
const ORPHAN_STOP_MS = 20_000;
if (process.channel !== undefined) {
  process.channel.unref();
  process.once('disconnect', () => {
    setTimeout(() => process.exit(1), ORPHAN_STOP_MS);
    process.kill(process.pid, 'SIGTERM');
  });
}
