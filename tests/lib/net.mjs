// Loopback helpers shared by the test libraries.
import net from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (for a process that must be started on a
 * known port, e.g. restarted on the same one). */
export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}
