/**
 * Asking the user about a name the allowlist does not hold: the answer is `once` (this VM may
 * reach it until it stops), `always` (also remembered by whoever asked), or `deny` (not asked
 * again while this VM runs). Concurrent connections to one name share one question; at most
 * MAX_QUESTIONS are asked per minute and at most one is open at a time, the rest are refused
 * without asking, so a guest cannot flood the user with prompts; an unanswered question is a
 * `deny` after ASK_TIMEOUT_MS.
 */
export type EgressAnswer = 'once' | 'always' | 'deny';
/** Asks the user whether the guest may reach a host name outside the allowlist (network `allowlist`). */
export type EgressAsk = (name: string, port: number) => Promise<EgressAnswer>;

const MAX_QUESTIONS = 3;
const ASK_TIMEOUT_MS = 60_000;

export class EgressQuestions {
  private readonly answers = new Map<string, boolean>();
  private readonly pending = new Map<string, Promise<boolean>>();
  private asked: number[] = [];

  constructor(
    private readonly ask: EgressAsk,
    private readonly now = () => Date.now(),
  ) {}

  /** True when the user allowed `name` (now or earlier in this VM's life). */
  async allowed(name: string, port: number): Promise<boolean> {
    const known = this.answers.get(name);
    if (known !== undefined) return known;
    const open = this.pending.get(name);
    if (open) return open;
    this.asked = this.asked.filter((t) => this.now() - t < 60_000);
    if (this.pending.size > 0 || this.asked.length >= MAX_QUESTIONS) return false;
    this.asked.push(this.now());
    const question = this.question(name, port);
    this.pending.set(name, question);
    try {
      return await question;
    } finally {
      this.pending.delete(name);
    }
  }

  private async question(name: string, port: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<EgressAnswer>((resolve) => {
      timer = setTimeout(() => resolve('deny'), ASK_TIMEOUT_MS);
    });
    try {
      const answer = await Promise.race([this.ask(name, port).catch((): EgressAnswer => 'deny'), timeout]);
      this.answers.set(name, answer !== 'deny');
      return answer !== 'deny';
    } finally {
      clearTimeout(timer);
    }
  }
}
