/**
 * No peer can make the gateway buffer without bound: a real gateway process whose add service is
 * a peer answering every call with a message exactly at the 4 MiB receive limit (valid
 * protobuf, not a result) — more than a gigabyte in all — answers 502 each time, and its resident
 * memory, read from /proc, stays within 50 MB of what it was before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http } from '../helpers/gateway.js';
import { startRoguePeer, type RoguePeer } from '../helpers/rogue-peer.js';

let cluster: Cluster | undefined;
let peer: RoguePeer | undefined;

const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

for (const transport of ['h2', 'grpc-js'] as const) {
  test(`${transport}: when a peer streams over a gigabyte of 4 MiB answers at the gateway, then no answer is a result and its RSS grows by less than 50 MB`, async (t) => {
    peer = await startRoguePeer('max-message');
    cluster = await startCluster({ services: [], env: { CALC_ADD_TARGETS: peer.target, CALC_GRPC_CLIENT: transport, CALC_DEADLINE_MS: '10000' } });
    try {
    const statuses = new Map<number, number>();
    const send = async (count: number, concurrency: number) => {
      let left = count;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (left-- > 0) {
          const { status } = await http(`${cluster!.gatewayUrl}/add/1/2`);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }));
    };
    const gateway = cluster.gateway()!.child.pid!;
    // Warm up at the same concurrency: connections, JIT, and the heap's working size for 2 calls of 4 MiB at once.
    await send(20, 2);
    const baseline = rssBytes(gateway);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(gateway))), 20);
    const sentBefore = peer.bytesSent();
    try {
      await send(260, 2);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssBytes(gateway));
    const streamed = peer.bytesSent() - sentBefore;
    // Never a result; 502 for the malformed answer, or 202 when the peer (in this loaded test process) missed the deadline.
    assert.deepEqual([...statuses.keys()].filter((s) => s !== 502 && s !== 202), [], JSON.stringify([...statuses]));
    assert.ok((statuses.get(502) ?? 0) > 0, JSON.stringify([...statuses]));
    assert.ok(streamed > 1024 ** 3, `the peer streamed ${streamed} bytes`);
    assert.ok(peak - baseline < 50 * 1024 * 1024, `RSS grew from ${baseline} to ${peak} bytes`);
    t.diagnostic(`${transport}: streamed ${(streamed / 1024 ** 3).toFixed(2)} GiB; gateway RSS ${(baseline / 2 ** 20).toFixed(1)} -> peak ${(peak / 2 ** 20).toFixed(1)} MiB`);
    } finally {
      await cluster.close();
      await peer.close();
      cluster = undefined;
      peer = undefined;
    }
  });
}
