// Layer: js-wrapper. What a refused token means for the stream and the writes.
// Every request and every stream open asks the app's `token()` again, so a token that expired
// is replaced by the next attempt when the app refreshes it there. A refusal that persists
// through REFUSALS_BEFORE_FINAL consecutive attempts (each with its own token() call) is final:
// the stream stops retrying and every write sent while it lasts settles as rejected with
// `unauthorized`, instead of staying pending with no answer. One accepted request ends it (the
// stream is started again).
export const REFUSALS_BEFORE_FINAL = 3;

export class AuthGate {
  private refusals = 0;

  constructor(
    private readonly onAccepted: () => void = () => undefined,
    private readonly limit = REFUSALS_BEFORE_FINAL,
  ) {}

  /** A request or stream was refused for its credentials (HTTP 401, a 4401 close). True when
   * the refusal is final. */
  refused(): boolean {
    this.refusals++;
    return this.isFinal;
  }

  /** A request with credentials went through. */
  accepted(): void {
    const wasFinal = this.isFinal;
    this.refusals = 0;
    if (wasFinal) this.onAccepted();
  }

  get isFinal(): boolean {
    return this.refusals >= this.limit;
  }
}
