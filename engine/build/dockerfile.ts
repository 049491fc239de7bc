import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { MicrovmError, shown } from '../errors';
import { expandVariables, PLATFORM_ARGS } from './args';
import {
  copyWithoutHeredocs,
  DEFAULT_SHELL,
  type GeneratedFile,
  HeredocProblem,
  heredocsOf,
  runWithoutHeredocs,
  shellOf,
} from './heredoc';

/**
 * What the host needs to know about a Dockerfile before a builder VM starts: its stages, the
 * images it reads (FROM, COPY --from, RUN --mount from=) after ARG substitution, and whether
 * buildah 1.28 can build it at all. The Dockerfile itself is never run here; buildah in the
 * builder VM parses it again and builds.
 */
export interface DockerfilePlan {
  /** The Dockerfile's host path, for messages. */
  file: string;
  stages: Stage[];
  /** Registry images the build reads (not stages, not scratch), in order of first use. */
  images: ImageUse[];
  /** Things buildah will ignore, worth telling the user. */
  warnings: string[];
  /**
   * The Dockerfile buildah gets: the text as written, except RUN here-documents, which
   * buildah 1.28 lacks, rewritten in exec form on their first line (blank lines keep every
   * line number).
   */
  buildText: string;
  /** Files the builder writes into its copy of the context for COPY here-documents. */
  generated: GeneratedFile[];
}

export interface Stage {
  /** Lower-cased, as stage names compare. */
  name: string | undefined;
  /** 1-based line of its FROM. */
  line: number;
  steps: Step[];
}

export interface Step {
  keyword: string;
  /** 1-based first line. */
  line: number;
  /** The instruction as buildah prints it after "STEP n/m:", whitespace collapsed. */
  text: string;
}

export interface ImageUse {
  /** The reference after ARG substitution, as written (e.g. debian:bookworm). */
  ref: string;
  line: number;
  /** How the Dockerfile uses it: 'FROM', 'COPY --from', 'RUN --mount'. */
  use: string;
}

const MAX_DOCKERFILE_BYTES = 1024 * 1024;

const KEYWORDS = new Set([
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]);

/** Flags buildah 1.28 takes, per instruction (others it refuses only when it reaches the step). */
const SUPPORTED_FLAGS: Readonly<Record<string, readonly string[]>> = {
  FROM: ['platform'],
  COPY: ['from', 'chown', 'chmod'],
  ADD: ['chown', 'chmod'],
  RUN: ['mount'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'retries'],
};

const HEREDOC = /^<<-?["']?[A-Za-z_][A-Za-z0-9_]*["']?/;

/** Instructions whose here-documents the builder takes (rewritten for buildah, heredoc.ts). */
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY']);

/**
 * Parses `text` (the Dockerfile at `file`) with dockerfile-ast and checks it against what the
 * builder's buildah supports; an unsupported construct is an E_DOCKERFILE naming the line.
 * `buildArgs` override the defaults of ARGs declared before the first FROM.
 */
export function planDockerfile(
  text: string,
  file: string,
  buildArgs: Readonly<Record<string, string>>,
  target?: string,
): DockerfilePlan {
  if (Buffer.byteLength(text) > MAX_DOCKERFILE_BYTES)
    throw dockerfileError(
      file,
      undefined,
      `it is larger than ${MAX_DOCKERFILE_BYTES} bytes`,
      'a Dockerfile that large is not one buildah should read',
    );
  const dockerfile = DockerfileParser.parse(text);
  const escape = dockerfile.getEscapeCharacter();
  const warnings: string[] = [];
  for (const directive of dockerfile.getDirectives()) {
    if (directive.getName().toLowerCase() === 'syntax') {
      warnings.push(
        `${file}: the "# syntax=${directive.getValue()}" directive is ignored: buildah builds with its own Dockerfile parser, not a BuildKit frontend`,
      );
    }
  }
  const globals = new Map(PLATFORM_ARGS);
  const stages: Stage[] = [];
  const images: ImageUse[] = [];
  const lines = text.split(/\r?\n/);
  const buildLines = [...lines];
  /** Each stage's shell (SHELL), which a stage built FROM it inherits. */
  const shells: Array<readonly string[]> = [];
  const generated: GeneratedFile[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    checkInstruction(instruction, keyword, line, file);
    if (keyword === 'FROM') {
      const stage = fromStage(instruction, line, globals, escape, stages, images, file);
      const base = expandVariables(instruction.getArguments()[0]?.getValue() ?? '', globals, escape).toLowerCase();
      const parent = stages.findIndex((s) => s.name !== undefined && s.name === base);
      shells.push(parent === -1 ? DEFAULT_SHELL : shells[parent]!);
      stages.push(stage);
    } else if (stages.length === 0) {
      if (keyword !== 'ARG')
        throw dockerfileError(
          file,
          line,
          `${keyword} comes before the first FROM`,
          'only ARG may come before the first FROM',
        );
      declareGlobals(instruction, globals, buildArgs, escape);
    } else {
      const stage = stages[stages.length - 1]!;
      if (keyword === 'SHELL') shells[stages.length - 1] = shellOf(instruction, lines) ?? DEFAULT_SHELL;
      const open = heredocsOf(instruction).find((h) => h.getDelimiterRange() === null);
      if (open)
        throw dockerfileError(
          file,
          line,
          `the here-document <<${open.getName()} has no line ${shown(open.getName())} that ends it`,
          `end it with a line holding only ${open.getName()}`,
        );
      let rewritten: string | undefined;
      if (keyword === 'RUN') rewritten = runWithoutHeredocs(instruction, lines, shells[stages.length - 1]!, escape);
      if (keyword === 'COPY') {
        try {
          const copy = copyWithoutHeredocs(instruction, lines, line);
          rewritten = copy?.text;
          generated.push(...(copy?.files ?? []));
        } catch (err) {
          if (!(err instanceof HeredocProblem)) throw err;
          throw dockerfileError(file, line, err.message, err.fix);
        }
      }
      if (rewritten !== undefined) {
        const { start, end } = instruction.getRange();
        buildLines.splice(
          start.line,
          end.line - start.line + 1,
          rewritten,
          ...Array<string>(end.line - start.line).fill(''),
        );
      }
      stage.steps.push({ keyword, line, text: rewritten === undefined ? stepText(instruction) : normalise(rewritten) });
      imagesOfStep(instruction, keyword, line, stages, globals, escape, images);
    }
  }
  if (stages.length === 0)
    throw dockerfileError(
      file,
      undefined,
      'it has no FROM instruction',
      'a Dockerfile starts its first stage with FROM (after optional ARG lines)',
    );
  if (target !== undefined && !stages.some((s) => s.name === target.toLowerCase())) {
    const names = stages.map((s) => s.name).filter(Boolean);
    throw dockerfileError(
      file,
      undefined,
      `the target ${shown(target)} is not a stage in it`,
      names.length > 0 ? `choose one of: ${names.join(', ')}` : 'name a stage with FROM ... AS NAME',
    );
  }
  // Unchanged when nothing was rewritten: the text (and so the build's cache key) as written.
  const rewrote = buildLines.some((l, i) => l !== lines[i]);
  return { file, stages, images, warnings, buildText: rewrote ? buildLines.join('\n') : text, generated };
}

function checkInstruction(instruction: Instruction, keyword: string, line: number, file: string): void {
  if (!KEYWORDS.has(keyword)) {
    throw dockerfileError(
      file,
      line,
      `unknown instruction ${shown(instruction.getInstruction())}`,
      `use one of ${[...KEYWORDS].join(', ')}`,
    );
  }
  if (
    !HEREDOC_KEYWORDS.has(keyword) &&
    (heredocsOf(instruction).length > 0 || instruction.getArguments().some((arg) => HEREDOC.test(arg.getValue())))
  ) {
    throw dockerfileError(
      file,
      line,
      `${keyword} uses a heredoc (<<EOF)`,
      'the builder runs buildah 1.28, which has no heredocs; it takes them on RUN and COPY (rewritten for it), not here: put the content in a file of the build context and COPY it',
    );
  }
  const supported = SUPPORTED_FLAGS[keyword] ?? [];
  for (const flag of flagsOf(instruction)) {
    if (!supported.includes(flag.toLowerCase())) {
      const allowed =
        supported.length > 0
          ? `buildah 1.28 takes ${supported.map((f) => `--${f}`).join(', ')} here`
          : `buildah 1.28 takes no flags on ${keyword}`;
      throw dockerfileError(
        file,
        line,
        `${keyword} --${flag} is not supported by the builder`,
        `${allowed}; remove the flag`,
      );
    }
  }
}

function fromStage(
  instruction: Instruction,
  line: number,
  globals: Map<string, string>,
  escape: string,
  stages: Stage[],
  images: ImageUse[],
  file: string,
): Stage {
  const args = instruction.getArguments().map((a) => a.getValue());
  const imageText = args[0];
  if (!imageText) throw dockerfileError(file, line, 'FROM names no image', 'write FROM IMAGE[:TAG] [AS NAME]');
  if (args.length > 1 && (args.length !== 3 || args[1]?.toLowerCase() !== 'as')) {
    throw dockerfileError(file, line, `FROM ${shown(args.join(' '))} is malformed`, 'write FROM IMAGE[:TAG] [AS NAME]');
  }
  const ref = expandVariables(imageText, globals, escape);
  if (!ref)
    throw dockerfileError(
      file,
      line,
      `FROM ${shown(imageText)} expands to nothing`,
      'give the ARG a default or pass it as a build argument',
    );
  const known = stages.some((s) => s.name === ref.toLowerCase());
  if (!known && ref.toLowerCase() !== 'scratch') addImage(images, { ref, line, use: 'FROM' });
  const name = args[2]?.toLowerCase();
  if (name !== undefined && stages.some((s) => s.name === name))
    throw dockerfileError(file, line, `the stage name ${shown(name)} is used twice`, 'give each stage its own name');
  return { name, line, steps: [{ keyword: 'FROM', line, text: stepText(instruction) }] };
}

/** ARG lines before the first FROM: their defaults (expanded), overridden by build arguments. */
function declareGlobals(
  instruction: Instruction,
  globals: Map<string, string>,
  buildArgs: Readonly<Record<string, string>>,
  escape: string,
): void {
  for (const arg of instruction.getArguments()) {
    const text = arg.getValue();
    const eq = text.indexOf('=');
    const name = eq === -1 ? text : text.slice(0, eq);
    const given = Object.hasOwn(buildArgs, name) ? buildArgs[name] : undefined;
    if (given !== undefined) globals.set(name, given);
    else if (eq !== -1) globals.set(name, expandVariables(unquote(text.slice(eq + 1)), globals, escape));
  }
}

/** COPY --from=IMAGE and RUN --mount=...,from=IMAGE read images that are not stages. */
function imagesOfStep(
  instruction: Instruction,
  keyword: string,
  line: number,
  stages: Stage[],
  globals: Map<string, string>,
  escape: string,
  images: ImageUse[],
): void {
  const sources: Array<[string, string]> = [];
  for (const flag of flagValues(instruction)) {
    if (keyword === 'COPY' && flag.name === 'from') sources.push([flag.value, 'COPY --from']);
    if (keyword === 'RUN' && flag.name === 'mount') {
      const from = flag.value
        .split(',')
        .map((kv) => kv.split('='))
        .find(([k]) => k === 'from');
      if (from?.[1]) sources.push([from[1], 'RUN --mount']);
    }
  }
  for (const [raw, use] of sources) {
    const ref = expandVariables(raw, globals, escape);
    const isStage =
      stages.some((s) => s.name === ref.toLowerCase()) || (/^\d+$/.test(ref) && Number(ref) < stages.length);
    if (!isStage && ref.toLowerCase() !== 'scratch') addImage(images, { ref, line, use });
  }
}

function addImage(images: ImageUse[], use: ImageUse): void {
  if (!images.some((i) => i.ref === use.ref)) images.push(use);
}

function flagsOf(instruction: Instruction): string[] {
  return flagValues(instruction).map((f) => f.name);
}

function flagValues(instruction: Instruction): Array<{ name: string; value: string }> {
  const withFlags = instruction as Instruction & {
    getFlags?: () => Array<{ getName(): string; getValue(): string | null }>;
  };
  return (withFlags.getFlags?.() ?? []).map((f) => ({ name: f.getName(), value: f.getValue() ?? '' }));
}

/** The instruction's text with whitespace collapsed: how it is matched against buildah's STEP lines. */
function stepText(instruction: Instruction): string {
  return normalise(instruction.toString());
}

export function normalise(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function unquote(text: string): string {
  return /^(["']).*\1$/s.test(text) ? text.slice(1, -1) : text;
}

/**
 * The Dockerfile line of a step buildah reports as `[stage/stages] STEP n/m: TEXT`. buildah
 * numbers the steps of each stage from its FROM, so while it builds every stage the position
 * decides (its text has ARGs expanded, ours does not); otherwise the text must match.
 */
export function lineOfStep(
  plan: DockerfilePlan,
  step: { stage?: number; stages?: number; step: number; text: string },
): number | undefined {
  const stages = step.stages ?? 1;
  if (stages === plan.stages.length) {
    const byPosition = plan.stages[(step.stage ?? 1) - 1]?.steps[step.step - 1];
    if (byPosition) return byPosition.line;
  }
  const text = normalise(step.text);
  return plan.stages.flatMap((s) => s.steps).find((s) => s.text === text)?.line;
}

export function dockerfileError(file: string, line: number | undefined, problem: string, fix: string): MicrovmError {
  const where = line === undefined ? file : `${file}:${line}`;
  return new MicrovmError('E_DOCKERFILE', `${where}: ${problem}; ${fix}`, { details: { file, line } });
}
