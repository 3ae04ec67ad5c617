// Layer: tests/chaos. The cluster half of a ChaosRun (harness.mjs, option `cluster`): the
// cluster of lib/cluster.mjs set up, its faults added to the nemesis, healed, and the
// database's own log handed to the checker, compared seq by seq with the auditor's stream.
import { sleep } from '../../server/helpers.mjs';
import { ChaosCluster } from './cluster.mjs';

const canonical = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((y) => [y, x[y]])) : x));
const sameChange = (a, b) =>
  a.collection === b.collection && a.id === b.id && a.op === b.op && a.version === b.version &&
  (a.origin?.client ?? null) === (b.origin?.client ?? null) && (a.origin?.mid ?? null) === (b.origin?.mid ?? null) &&
  canonical(a.fields ?? {}) === canonical(b.fields ?? {});
const show = (ch) => (ch ? `${ch.op} ${ch.collection}/${ch.id} v${ch.version} by ${ch.origin ? `${ch.origin.client}#${ch.origin.mid}` : 'none'}` : 'nothing');

/** The cluster half of a ChaosRun (harness.mjs, option `cluster`): sets the cluster up, adds
 * its faults to the nemesis (kill -9 of a random node every few seconds, restarted on its port
 * after `nodeDownMs`; PostgreSQL crashed and restarted `pgRestarts` times, spread over the run;
 * the auditor's stream moved to the next node every 2-5 s), heals it, and gives the checker the
 * database's own log. Options:
 *   nodes (3), nodeKillEveryS ([3, 6]), nodeDownMs ([1000, 3000]), pgRestarts (1),
 *   minNodesUp (1: a node is killed or paused only while more than this many run),
 *   nodePauseEveryS (null: none; [lo, hi]: SIGSTOP of a random node, a hung node, for
 *   nodePauseMs ([300, 4000]), and one pause in 5 for nodeLongPauseMs ([11000, 14000]: past
 *   the nodes' group_lock_timeout_ms of 10 s, so PostgreSQL ends the hung node's session), then
 *   SIGCONT;
 *   dbPartitionEveryS (null: none; [lo, hi]: a random node loses its way to PostgreSQL for
 *   dbPartitionMs ([2000, 8000]) while it keeps serving HTTP: its DbLink holds every byte). */
export class ClusterChaos {
  constructor(run, opts = {}) {
    this.run = run;
    this.opts = {
      nodes: 3, nodeKillEveryS: [3, 6], nodeDownMs: [1000, 3000], pgRestarts: 1, minNodesUp: 1,
      nodePauseEveryS: null, nodePauseMs: [300, 4000], nodeLongPauseMs: [11000, 14000],
      dbPartitionEveryS: null, dbPartitionMs: [2000, 8000], ...opts,
    };
    this.restarting = new Set();
    this.pgRestarting = null;
    this.nodeHeadsAtQuiet = null;
    this.audit = { next: 0, moves: 0, stalls: 0, left: 0, on: null, connections: {} };
  }

  /** Where the auditor's stream connects next: straight to the next node in turn (one that was
   * just killed refuses, and the auditor tries the one after). */
  auditTarget() {
    // The next node in turn that the nemesis is not busy with (killed, hung, cut off): the
    // auditor is the checker's record and must keep up with log_retention.
    let n = this.nodes[this.audit.next++ % this.nodes.length];
    for (let i = 0; i < this.nodes.length && this.restarting.has(n); i++) n = this.nodes[this.audit.next++ % this.nodes.length];
    this.audit.connections[n.name] = (this.audit.connections[n.name] ?? 0) + 1;
    this.audit.on = n;
    return n;
  }

  /** The nemesis is about to hang or cut off `n`: an auditor on it moves first. */
  #auditLeave(n) {
    if (this.audit.on !== n) return;
    this.audit.left++;
    this.run.auditClose?.();
  }

  async setup({ config, workDir, staticDir }) {
    this.cluster = new ChaosCluster({ nodes: this.opts.nodes, config, workDir, staticDir, dbLinks: !!this.opts.dbPartitionEveryS, log: (...a) => this.run.log(...a) });
    await this.cluster.start();
    await this.cluster.copyLog();
    Object.assign(this.run.faults, { node_kill9: 0, pg_restart: 0, ...(this.opts.nodePauseEveryS ? { node_pause: 0, node_long_pause: 0 } : {}), ...(this.opts.dbPartitionEveryS ? { db_partition: 0 } : {}) });
    return this.cluster.balancer;
  }

  get nodes() {
    return this.cluster?.nodes ?? [];
  }

  /** Plans the nemesis' cluster faults for a run of `seconds` starting now. */
  plan(r, seconds) {
    const now = Date.now();
    const [lo, hi] = this.opts.nodeKillEveryS;
    this.nextNodeKill = now + r.range(lo, hi) * 1000;
    this.nextAuditMove = now + r.range(2, 5) * 1000;
    this.nextNodePause = this.opts.nodePauseEveryS ? now + r.range(...this.opts.nodePauseEveryS) * 1000 : Infinity;
    this.nextPartition = this.opts.dbPartitionEveryS ? now + r.range(...this.opts.dbPartitionEveryS) * 1000 : Infinity;
    // PostgreSQL restarts spread evenly over the run, each moved by up to a tenth of its share.
    const k = this.opts.pgRestarts;
    this.pgPlan = Array.from({ length: k }, (_, i) => now + (seconds * 1000 * (i + 1 + r.range(-0.2, 0.2))) / (k + 1));
  }

  /** One step of the nemesis loop: starts what is due, never waits for it. */
  tick(r) {
    const now = Date.now();
    if (now >= this.nextNodeKill) {
      const [lo, hi] = this.opts.nodeKillEveryS;
      this.nextNodeKill = now + r.range(lo, hi) * 1000;
      const up = this.nodes.filter((n) => n.alive && !this.restarting.has(n));
      if (up.length > this.opts.minNodesUp) {
        const n = r.pick(up);
        const down = r.int(...this.opts.nodeDownMs);
        this.restarting.add(n);
        n.restarting = this.#killAndRestart(n, down).finally(() => {
          this.restarting.delete(n);
          n.restarting = null;
        });
      }
    }
    if (now >= this.nextNodePause) {
      this.nextNodePause = now + r.range(...this.opts.nodePauseEveryS) * 1000;
      const up = this.nodes.filter((n) => n.alive && !this.restarting.has(n));
      if (up.length > this.opts.minNodesUp) {
        const n = r.pick(up);
        const long = r.chance(0.2);
        const ms = r.int(...(long ? this.opts.nodeLongPauseMs : this.opts.nodePauseMs));
        this.restarting.add(n);
        n.restarting = this.#pause(n, ms, long).finally(() => {
          this.restarting.delete(n);
          n.restarting = null;
        });
      }
    }
    if (now >= this.nextPartition) {
      this.nextPartition = now + r.range(...this.opts.dbPartitionEveryS) * 1000;
      const up = this.nodes.filter((n) => n.alive && !this.restarting.has(n));
      if (up.length > this.opts.minNodesUp) {
        const n = r.pick(up);
        const ms = r.int(...this.opts.dbPartitionMs);
        this.restarting.add(n);
        n.restarting = this.#partition(n, ms).finally(() => {
          this.restarting.delete(n);
          n.restarting = null;
        });
      }
    }
    if (now >= this.nextAuditMove) {
      // The auditor ends its stream and resumes from its cursor on the next node.
      this.nextAuditMove = now + r.range(2, 5) * 1000;
      this.audit.moves++;
      this.run.auditClose?.();
    } else if (now - (this.run.audit?.activity ?? now) > 2500) {
      // No change for 2.5 s while 20 clients write: its node is behind (hung, cut off, slow).
      // With a log_retention the auditor must not wait for it, or the log moves past its cursor.
      this.audit.stalls++;
      this.run.audit.activity = now;
      this.run.auditClose?.();
    }
    if (this.pgPlan.length && now >= this.pgPlan[0] && !this.pgRestarting) {
      this.pgPlan.shift();
      this.pgRestarting = this.#restartPg().finally(() => (this.pgRestarting = null));
    }
  }

  async #killAndRestart(n, downMs) {
    await this.run.sampleServer([n]); // its metrics start again at 0
    this.run.faults.node_kill9++;
    await n.kill9();
    await sleep(downMs);
    try {
      await n.start();
    } catch (e) {
      this.run.violation(`${n.name} did not come back after kill -9: ${e.message}`);
    }
  }

  async #pause(n, ms, long) {
    this.#auditLeave(n);
    this.run.faults.node_pause++;
    if (long) this.run.faults.node_long_pause++;
    n.pause();
    await sleep(ms);
    n.resume();
  }

  async #partition(n, ms) {
    this.#auditLeave(n);
    this.run.faults.db_partition++;
    n.mark(`PostgreSQL partitioned away for ${ms} ms`);
    n.dbLink.partition();
    await sleep(ms);
    n.dbLink.heal();
    n.mark('PostgreSQL partition healed');
  }

  async #restartPg() {
    this.run.faults.pg_restart++;
    try {
      await this.cluster.restartDatabase();
      this.run.log(`chaos: PostgreSQL restarted (immediate) in ${this.cluster.dbRestartMs.at(-1)} ms`);
    } catch (e) {
      this.run.violation(`PostgreSQL restart failed: ${e.message}`);
    }
  }

  /** After the nemesis: the database up, every node up and counted UP by HAProxy. */
  async heal() {
    if (this.pgRestarting) await this.pgRestarting;
    for (const n of this.nodes) if (n.restarting) await n.restarting;
    for (const n of this.nodes) {
      if (!n.alive) {
        try {
          await n.start();
        } catch (e) {
          this.run.violation(`${n.name} could not be started at heal: ${e.message}`);
        }
      }
    }
    try {
      await this.cluster.waitAllUp();
    } catch (e) {
      this.run.violation(e.message);
    }
  }

  /** The database's head; a node that has not broadcast up to it yet goes into `lagging`. */
  async head(lagging) {
    const { head, max } = await this.cluster.head();
    if (max !== head) lagging.push(`the database's head_seq is ${head} but its log ends at ${max}`);
    const heads = {};
    for (const n of this.nodes) {
      const h = await n.health();
      heads[n.name] = h?.seq ?? null;
      if (h?.seq !== head) lagging.push(`${n.name}: broadcast up to ${h?.seq ?? 'nothing (no answer)'}, the database's head is ${head}`);
    }
    this.nodeHeadsAtQuiet = heads;
    return head;
  }

  /** The checker's record: the database's log, whole (its copy, lib/cluster.mjs copyLog: rows
   * pruned since are still there), checked dense and against what the log holds at the end,
   * compared seq by seq with what the auditor's stream (moved from node to node, resumed
   * across every kill) delivered. Returns its changes. */
  async serverLog(auditorLog, head) {
    const v = (m) => this.run.violation(m);
    const log = (await this.cluster.readLog({ table: 'chaos_log_copy' })).filter((row) => row.seq <= head);
    log.forEach((row, i) => {
      if (row.seq !== i + 1) v(`DATABASE LOG: position ${i} holds seq ${row.seq}, expected ${i + 1} (a gap or a repeat in the shared log)`);
    });
    // What the log holds now (after pruned_through) must be what was inserted.
    const [[prunedText]] = await this.cluster.query(`SELECT value FROM meta WHERE key = 'pruned_through'`);
    const pruned = Number(prunedText);
    const now = await this.cluster.readLog({ after: pruned });
    if (now.length !== head - pruned || now.some((row, i) => row.seq !== pruned + i + 1)) v(`DATABASE LOG: ${now.length} rows after pruned_through ${pruned}, head ${head}, not dense`);
    const bySeq = new Map(log.map((row) => [row.seq, row]));
    const changed = now.filter((row) => row.kind === undefined && !(bySeq.get(row.seq) && sameChange(bySeq.get(row.seq), row)));
    if (changed.length) v(`DATABASE LOG: ${changed.length} rows differ from what was inserted, e.g. seq ${changed[0].seq}`);
    const changes = log.filter((row) => row.kind === undefined);
    this.logRows = { changes: changes.length, other: log.length - changes.length, pruned_through: pruned };
    // The auditor: every change it got equals the log's; every seq it lacks lies in a hole a
    // reset explains (with a log_retention a stream that fell behind is reset: legitimate).
    const seen = new Map(auditorLog.map((ch) => [ch.seq, ch]));
    const holes = this.run.audit?.resetHoles ?? [];
    const missing = [];
    let differing = 0;
    for (const ch of changes) {
      const a = seen.get(ch.seq);
      if (!a) {
        if (holes.some(([lo, hi]) => ch.seq >= lo && ch.seq <= hi)) continue;
        const last = missing[missing.length - 1];
        if (last && last[1] === ch.seq - 1) last[1] = ch.seq;
        else missing.push([ch.seq, ch.seq]);
      } else if (!sameChange(a, ch) && ++differing <= 8) v(`AUDITOR: seq ${ch.seq}: the stream delivered ${show(a)} ${canonical(a.fields)}, the database holds ${show(ch)} ${canonical(ch.fields)}`);
    }
    if (differing > 8) v(`AUDITOR: ${differing - 8} more seqs differ from the database's`);
    for (const [a, b] of missing) v(`AUDITOR: seqs ${a}..${b} (${b - a + 1}) are in the database's log but its stream never delivered them`);
    const extra = auditorLog.filter((a) => !bySeq.has(a.seq));
    if (extra.length) v(`AUDITOR: its stream delivered ${extra.length} seq(s) the database's log does not hold, e.g. ${extra.slice(0, 5).map((a) => `${a.seq} (${show(a)})`).join(', ')}`);
    return changes;
  }

  figures() {
    return {
      nodes: this.opts.nodes,
      node_kill9: this.run.faults.node_kill9,
      node_starts: this.nodes.reduce((s, n) => s + n.startAttempts, 0),
      node_start_failures: this.nodes.reduce((o, n) => {
        for (const [k, v] of Object.entries(n.startFailures)) o[k] = (o[k] ?? 0) + v;
        return o;
      }, {}),
      pg_restarts: this.cluster?.dbRestarts ?? 0,
      pg_restart_ms: this.cluster?.dbRestartMs ?? [],
      node_heads_at_quiet: this.nodeHeadsAtQuiet,
      auditor_moved: this.audit.moves,
      auditor_stalls: this.audit.stalls,
      auditor_left_faulty_node: this.audit.left,
      auditor_connections: this.audit.connections,
      database_log: this.logRows ?? null,
    };
  }

  async stop() {
    await this.pgRestarting?.catch(() => {});
    await Promise.all([...this.restarting].map((n) => n.restarting?.catch(() => {})));
    await this.cluster?.stop();
  }
}
