import { MicrovmError, shown } from '../errors';
import { lineOfStep, type DockerfilePlan } from './dockerfile';

/** What buildah is asked to do, and what its output means: pure, tested without a VM. */

export interface BudRequest {
  dockerfile: string;
  context: string;
  args: Readonly<Record<string, string>>;
  target?: string;
  tag: string;
  noCache: boolean;
}

/**
 * `buildah bud` with chroot isolation (the guest has no bridge or iptables modules for the OCI
 * runtime's; RUN steps share the VM's network), the layer cache (kept on the builder's
 * volume), and no registry access: every image the Dockerfile reads was loaded beforehand.
 */
export function budArgv(request: BudRequest): string[] {
  return [
    'buildah',
    'bud',
    '--isolation',
    'chroot',
    '--pull=never',
    '--layers',
    '--format',
    'oci',
    '--file',
    request.dockerfile,
    ...Object.entries(request.args).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]),
    ...(request.target ? ['--target', request.target] : []),
    ...(request.noCache ? ['--no-cache'] : []),
    '--tag',
    request.tag,
    request.context,
  ];
}

export interface StepLine {
  stage?: number;
  stages?: number;
  step: number;
  steps: number;
  text: string;
}

const STEP_LINE = /^(?:\[(\d+)\/(\d+)\] )?STEP (\d+)\/(\d+): (.*)$/;

/** buildah's "[2/3] STEP 4/7: RUN make" (the stage part only in multi-stage builds). */
export function parseStepLine(line: string): StepLine | null {
  const match = STEP_LINE.exec(line);
  if (!match) return null;
  const [, stage, stages, step, steps, text = ''] = match;
  return {
    stage: stage ? Number(stage) : undefined,
    stages: stages ? Number(stages) : undefined,
    step: Number(step),
    steps: Number(steps),
    text,
  };
}

export function isCacheHit(line: string): boolean {
  return /^--> Using cache [0-9a-f]{12,}/.test(line);
}

/** What a build step's failure becomes: E_BUILD_FAILED naming the Dockerfile line, the step and buildah's words. */
export function stepFailure(
  plan: DockerfilePlan,
  step: StepLine | undefined,
  exitCode: number,
  tail: string[],
): MicrovmError {
  const reason =
    tail.filter((l) => /^(Error|error)\b/.test(l)).pop() ?? tail[tail.length - 1] ?? `buildah exited with ${exitCode}`;
  if (!step) {
    return new MicrovmError(
      'E_BUILD_FAILED',
      `building ${plan.file} failed before its first step: ${shown(reason)}; see the build log`,
      { details: { file: plan.file } },
    );
  }
  const line = lineOfStep(plan, step);
  const where = line === undefined ? plan.file : `${plan.file}:${line}`;
  const stage = step.stage !== undefined ? ` of stage ${step.stage}/${step.stages}` : '';
  const message =
    `${where}: step ${step.step}/${step.steps}${stage} ${shown(step.text)} failed: ${shown(reason)}; ` +
    'fix the step (the build log has its output); the steps before it stay cached';
  return new MicrovmError('E_BUILD_FAILED', message, { details: { file: plan.file, line, step: step.text } });
}
