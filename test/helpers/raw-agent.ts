import * as net from 'node:net';
import { Frame, FrameDecoder } from '../../engine/agent/frame';

export interface RawAgentSession {
  send(bytes: Buffer): void;
  /** The next frame from the agent, in order. */
  next(): Promise<Frame>;
  /** The next frame on `stream` of `type`; frames before it are dropped. */
  nextOn(stream: number, type: number): Promise<Frame>;
  close(): void;
}

/** A raw socket to an agent's --unix transport, speaking frames by hand (inputs the engine's client never produces). */
export async function rawAgentSession(socketPath: string): Promise<RawAgentSession> {
  const socket = net.connect(socketPath);
  await new Promise((resolve) => socket.once('connect', resolve));
  const decoder = new FrameDecoder();
  const queue: Frame[] = [];
  const waiters: Array<(f: Frame) => void> = [];
  socket.on('data', (data) => {
    for (const frame of decoder.push(data)) {
      const waiter = waiters.shift();
      if (waiter) waiter(frame);
      else queue.push(frame);
    }
  });
  const next = (): Promise<Frame> => {
    const frame = queue.shift();
    return frame ? Promise.resolve(frame) : new Promise((resolve) => waiters.push(resolve));
  };
  return {
    send: (bytes) => socket.write(bytes),
    next,
    nextOn: async (stream, type) => {
      for (;;) {
        const frame = await next();
        if (frame.stream === stream && frame.type === type) return frame;
      }
    },
    close: () => socket.destroy(),
  };
}
