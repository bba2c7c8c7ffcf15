// The load generator, in its own process so the app's latency is not the client's:
// `node load-child.ts <url> <requests> <concurrency>` prints {requests, sent (warm-up included), failed, p50, p99, latencies}.
const [url, requestsArg, concurrencyArg] = process.argv.slice(2) as [string, string, string];
const requests = Number(requestsArg);
const latencies: number[] = [];
let failed = 0;
let next = 0;

/** A fresh process is cold (JIT, connections): its first requests measure itself, not the app. */
const WARM_UP_PER_CONNECTION = 20;
async function warmUp(): Promise<void> {
  await Promise.all(
    Array.from({ length: Number(concurrencyArg) }, async () => {
      for (let i = 0; i < WARM_UP_PER_CONNECTION; i++)
        await (await fetch(url, { headers: { 'x-posthog-distinct-id': 'warm-up' } })).arrayBuffer();
    }),
  );
}

async function worker(): Promise<void> {
  while (next < requests) {
    const n = next++;
    const started = performance.now();
    try {
      const res = await fetch(url, {
        headers: {
          'x-posthog-distinct-id': `user-${n % 200}`,
          'x-posthog-session-id': `s-${n % 200}`,
        },
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      if (!res.ok) failed++;
    } catch {
      failed++;
    }
    latencies.push(performance.now() - started);
  }
}

await warmUp();
await Promise.all(Array.from({ length: Number(concurrencyArg) }, worker));
latencies.sort((a, b) => a - b);
const at = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
const sent = requests + WARM_UP_PER_CONNECTION * Number(concurrencyArg);
console.log(JSON.stringify({ requests, sent, failed, p50: at(50), p99: at(99), latencies }));

export {};
