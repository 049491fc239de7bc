import * as net from 'node:net';

/**
 * The start lock of one workspace's supervisor: a listening socket in Linux's abstract
 * namespace. The kernel releases the name the moment its holder dies, SIGKILL included, so
 * a lock can never be stale, and two supervisors racing for it end with exactly one holder.
 * It guards nothing by itself (anyone may connect to it; connections are closed at once);
 * the real socket is a file in a 0700 directory.
 */
export function acquireStartLock(name: string): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(undefined);
      else reject(err);
    });
    server.listen(name, () => resolve(server));
  });
}
