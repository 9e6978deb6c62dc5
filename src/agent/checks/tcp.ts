/**
 * TCP checks: connect to `TCP` within `Timeout` and close again. Passing output is Consul's
 * `TCP connect <addr>: Success`; a failure is critical with Go's dial error text (Consul docs, Health checks).
 */
import net from 'node:net';
import type { CheckDefinition } from '../catalog/index.ts';
import { goDialError, type ProbeResult, type Prober, splitHostPort, timeoutOf } from './probe.ts';

/**
 * Makes the TCP check prober.
 *
 * @example
 * const tcp = createTcpProber();
 * await tcp.run(def, AbortSignal.timeout(15_000)); // { status: 'passing', output: 'TCP connect 127.0.0.1:5432: Success' }
 */
export function createTcpProber(): Prober {
  return { run: runTcp };
}

function runTcp(def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult> {
  const addr = def.tcp ?? '';
  const target = splitHostPort(addr);
  if (!target) {
    return Promise.resolve({
      status: 'critical',
      output: `dial tcp: address ${addr}: missing port in address`,
    });
  }
  if (signal.aborted)
    return Promise.resolve({ status: 'critical', output: `dial tcp ${addr}: operation was canceled` });
  return new Promise((resolve) => {
    let settled = false;
    const socket = net.connect({ host: target.host, port: target.port });
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    // A probe's deadline is wall-clock time: it bounds real network I/O, unlike the schedule which follows
    // the injected clock.
    const timer = setTimeout(
      () => finish({ status: 'critical', output: `dial tcp ${addr}: i/o timeout` }),
      timeoutOf(def),
    );
    timer.unref();
    const onAbort = () => finish({ status: 'critical', output: `dial tcp ${addr}: operation was canceled` });
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish({ status: 'passing', output: `TCP connect ${addr}: Success` }));
    socket.once('error', (err) => finish({ status: 'critical', output: goDialError(addr, err) }));
  });
}
