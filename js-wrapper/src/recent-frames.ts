/**
 * The stream frames this tab applied lately, as an unbroken stretch of the server's log:
 * from cursor `base` to `end()`. The leader answers a follower's catch-up from it, so a tab
 * that opens, or a leader that was frozen and steps down, takes the few frames it missed from
 * memory instead of a full snapshot over the network.
 */
export class RecentFrames {
  private batches: { after: number; frames: string[] }[] = [];
  private base: number | null = null;
  private frameCount = 0;
  private charCount = 0;

  constructor(private readonly maxFrames = 5000, private readonly maxChars = 4_000_000) {}

  /** A batch applied: the cursor moved from `before` to `after`. A batch that does not start
   * where the stretch ends (a snapshot moved the cursor in between) starts a new stretch. */
  record(before: number, after: number, frames: string[]): void {
    if (this.end() !== before) this.restart(before);
    // A reset: the log moved past this replica, which now takes a snapshot. Until then nobody can
    // catch up from here.
    if (frames.some((f) => f.includes('"type":"reset"'))) return this.invalidate();
    if (after <= before || frames.length === 0) return; // nothing of the log in it
    this.batches.push({ after, frames });
    this.frameCount += frames.length;
    this.charCount += charsOf(frames);
    while ((this.frameCount > this.maxFrames || this.charCount > this.maxChars) && this.batches.length > 0) {
      const old = this.batches.shift()!;
      this.frameCount -= old.frames.length;
      this.charCount -= charsOf(old.frames);
      this.base = old.after;
    }
  }

  /** The cursor jumped (a snapshot): what is kept no longer joins what comes next. */
  restart(cursor: number): void {
    this.batches = [];
    this.frameCount = this.charCount = 0;
    this.base = cursor;
  }

  invalidate(): void {
    this.restart(0);
    this.base = null;
  }

  end(): number | null {
    return this.batches.length ? this.batches[this.batches.length - 1].after : this.base;
  }

  /** Every kept frame after `cursor` (some of the first batch may be at or below it: the
   * engine skips those), or null when the stretch does not reach back to `cursor`. */
  since(cursor: number): string[] | null {
    const end = this.end();
    if (this.base === null || end === null || cursor < this.base) return null;
    if (cursor >= end) return [];
    const out: string[] = [];
    for (const b of this.batches) if (b.after > cursor) out.push(...b.frames);
    return out;
  }
}

function charsOf(frames: string[]): number {
  let n = 0;
  for (const f of frames) n += f.length;
  return n;
}
