import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';

/**
 * abortSocket on a socket whose FIN is already on its way (what a forward does when the VM
 * goes away after the guest closed its side). Run in a child process on real loopback
 * sockets, because the failure shows at exit: a handle Node never closes makes the process
 * spin at 100% CPU instead of exiting.
 */
const SCENARIO = `
const net = require('node:net');
const { abortSocket } = require(process.argv[1]);
const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
  socket.on('error', (err) => console.log('error ' + err.code));
  socket.on('close', () => console.log('closed'));
  socket.write('response');
  socket.end();
  abortSocket(socket);
  server.close();
});
server.listen(0, '127.0.0.1', () => {
  const client = net.connect(server.address().port, '127.0.0.1');
  client.on('data', () => undefined);
  client.on('error', () => undefined);
});
`;

function runScenario(): Promise<{ exited: boolean; stdout: string }> {
  const helper = path.resolve(__dirname, '..', '..', 'engine', 'agent', 'tcp-stream.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', SCENARIO, helper], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ exited: false, stdout });
    }, 10_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve({ exited: true, stdout });
    });
  });
}

test('abortSocket after end(): the socket closes without an error and the process exits', async () => {
  const result = await runScenario();
  assert.equal(result.stdout, 'closed\n');
  assert.equal(result.exited, true, 'the process exited');
});
