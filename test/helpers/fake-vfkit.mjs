#!/usr/bin/env node
// A stand-in for vfkit on Linux, for the vfkit backend's tests: it reads the command line the
// engine generated, listens on the agent's vsock socket path and carries each connection to
// the real guest agent in its host mode (--unix on a socket of its own, where the guest's vsock
// port would be): a connection made while the "guest" listens nowhere yet is closed, as vfkit
// cannot connect it (FAKE_VFKIT_AGENT_DELAY_MS starts the agent that late). It serves vfkit's
// REST API (/vm/state) on the REST socket; Stop or HardStop ends the agent and exits 0, as vfkit
// does when its guest powers off.
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';

const argv = process.argv.slice(2);
const devices = argv.flatMap((arg, i) => (argv[i - 1] === '--device' ? [arg] : []));
const vsock = devices.find((d) => d.startsWith('virtio-vsock,'));
const socketURL = /socketURL=([^,]+)/.exec(vsock ?? '')?.[1];
const restSocket = argv[argv.indexOf('--restful-uri') + 1]?.replace(/^unix:\/\//, '');
if (!socketURL || !restSocket || !/,connect$/.test(vsock)) {
  process.stderr.write('level=fatal msg="fake vfkit: no virtio-vsock connect device or REST socket"\n');
  process.exit(1);
}
const guestPort = `${socketURL}.guest`;
let agent;
const startAgent = () => {
  agent = spawn(process.env.FAKE_VFKIT_AGENT, ['--unix', guestPort], { stdio: 'ignore' });
  agent.on('exit', () => {
    server.close();
    vsockSocket.close();
    process.stderr.write('level=info msg="VM is stopped"\n');
    process.exit(0);
  });
};
setTimeout(startAgent, Number(process.env.FAKE_VFKIT_AGENT_DELAY_MS ?? 0));
const vsockSocket = net.createServer((host) => {
  const guest = net.connect(guestPort);
  guest.on('connect', () => host.pipe(guest).pipe(host));
  guest.on('error', () => host.destroy());
  host.on('error', () => guest.destroy());
  host.on('close', () => guest.destroy());
  guest.on('close', () => host.destroy());
});
vsockSocket.listen(socketURL);
let state = 'VirtualMachineStateRunning';
const server = http.createServer((req, res) => {
  if (req.method === 'GET') return res.end(JSON.stringify({ state, canStop: true }));
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    res.end();
    if (['Stop', 'HardStop'].includes(JSON.parse(body).state)) {
      state = 'VirtualMachineStateStopped';
      agent?.kill('SIGKILL');
    }
  });
});
server.listen(restSocket);
process.stderr.write('level=info msg="virtual machine is running"\n');
