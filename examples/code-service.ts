/**
 * A code-execution service: one pool (min ready VMs, at most max at once) serves requests that
 * arrive together; each request borrows a VM, stages its files in the record form and runs.
 * Requests beyond `max` wait in line for a released VM. `pool.stats()` shows the counts.
 * Run: node --import tsx examples/code-service.ts
 */
import { Image, type Pool } from '../engine';

interface Request {
  id: number;
  files: Record<string, Buffer>;
}

async function handle(pool: Pool, request: Request): Promise<string> {
  const vm = await pool.acquire();
  try {
    const result = await vm.exec({
      argv: ['sh', '/job/main.sh'],
      stageFiles: request.files,
      timeoutMs: 10_000,
    });
    return `request ${request.id}: exit ${result.exitCode} "${result.stdout.trim()}"`;
  } finally {
    await vm.release();
  }
}

async function main(): Promise<void> {
  const pool = (await Image.build()).pool({ min: 1, max: 2 });
  try {
    const requests: Request[] = [1, 2, 3, 4].map((id) => ({
      id,
      files: {
        '/job/main.sh': Buffer.from('echo "$(cat /job/name) squared is $(( $(cat /job/n) * $(cat /job/n) ))"'),
        '/job/name': Buffer.from(`job${id}`),
        '/job/n': Buffer.from(String(id * 3)),
      },
    }));
    // While they run, watch the counts: never more than max VMs; the other requests wait in line.
    let mostVms = 0;
    let mostWaiting = 0;
    const watch = setInterval(() => {
      const { alive, booting, waiting } = pool.stats();
      mostVms = Math.max(mostVms, alive + booting);
      mostWaiting = Math.max(mostWaiting, waiting);
    }, 10);
    const answers = await Promise.all(requests.map((request) => handle(pool, request))).finally(() =>
      clearInterval(watch),
    );
    for (const answer of answers) console.log(answer);
    console.log(`most VMs at once: ${mostVms}, most requests waiting: ${mostWaiting}`);
    const after = pool.stats();
    console.log(`after: inUse ${after.inUse}, waiting ${after.waiting}, min ${after.min}, max ${after.max}`);
  } finally {
    await pool.shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
