// Creating many objects for a benchmark: `concurrency` workers over indexes 0..total-1, each
// call retried (the API server sheds load under a burst), progress every 2,000 with the rate.
export async function parallel(concurrency: number, total: number, what: string, log: (msg: string) => void, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  let done = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        for (let attempt = 0; ; attempt++) {
          try {
            await fn(i);
            break;
          } catch (err) {
            if (attempt >= 5) throw err;
            await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
          }
        }
        if (++done % 2000 === 0) log(`${what}: ${done}/${total} (${Math.round(done / ((Date.now() - t0) / 1000))}/s)`);
      }
    }),
  );
}
