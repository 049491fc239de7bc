/**
 * The slowest VM tests (minutes each under TCG): `npm test` on a developer's machine runs
 * them; CI (CI=true) skips them to keep the suite well under its time budget, unless
 * MICROVM_TEST_SLOW=1 asks for the whole suite. Each one has a quicker sibling that CI runs
 * (a shorter load, a smaller tree, a shorter stream), so the behaviour stays covered there.
 */
export const SLOW: { skip?: string } =
  process.env.CI && process.env.MICROVM_TEST_SLOW !== '1'
    ? { skip: 'slow test: CI runs the quicker siblings; MICROVM_TEST_SLOW=1 runs it' }
    : {};
