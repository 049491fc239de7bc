import type { Instruction } from 'dockerfile-ast';

/** A here-document's opening word: `<<`, `-` to strip tabs, an optional quote, the delimiter. */
const HEREDOC_START = /^<<(-?)(["']?)([A-Za-z0-9_.-]+)\2$/;

/** The shell of a stage that sets none (the Linux default of docker and buildah). */
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

interface Position {
  line: number;
  character: number;
}

interface Range {
  start: Position;
  end: Position;
}

/** What dockerfile-ast tells about a here-document of a RUN (its API is marked experimental). */
interface HeredocNode {
  getName(): string;
  getStartRange(): Range;
  getContentRange(): Range | null;
  getDelimiterRange(): Range | null;
}

/**
 * A shell-form RUN with here-documents, rewritten in exec form for the builder's buildah 1.28,
 * which has no heredocs, with BuildKit's meaning:
 * - `RUN <<EOF` alone: the document is the script, run by the stage's shell (`<<-` strips
 *   leading tabs); a document starting with `#!` is written to a file and executed;
 * - anything else (`RUN python3 <<EOF`, `RUN <<EOF bash`, `RUN cat <<A >a <<B >b`): the
 *   command line followed by the documents and their delimiter lines, as written, goes to the
 *   shell, which reads the here-documents itself.
 * Returns undefined when the instruction has no here-documents. `lines` is the Dockerfile.
 */
export function runWithoutHeredocs(
  instruction: Instruction,
  lines: readonly string[],
  shell: readonly string[],
  escape: string,
): string | undefined {
  const heredocs = heredocsOf(instruction);
  const first = heredocs[0];
  const args = instruction.getArgumentsRange();
  if (!first || !args) return undefined;
  const start = args.start;
  const commandEnd = (first.getContentRange() ?? first.getDelimiterRange() ?? first.getStartRange()).start.line;
  const commandLines = lines.slice(start.line, Math.max(commandEnd, start.line + 1));
  commandLines[0] = commandLines[0]!.slice(start.character);
  const command = joinContinuations(commandLines, escape);
  const head = lines[start.line]!.slice(0, start.character).trimEnd(); // RUN and its flags
  const only = heredocs.length === 1 ? HEREDOC_START.exec(command.trim()) : null;
  let argv: string[];
  if (only) {
    let data = body(first, lines);
    if (only[1]) data = data.replace(/^\t+/gm, ''); // <<- strips leading tabs
    argv = data.startsWith('#!')
      ? [
          ...shell,
          'f=$(mktemp) && printf %s "$1" >"$f" && chmod 700 "$f" && "$f"; s=$?; rm -f "$f"; exit $s',
          'heredoc',
          data,
        ]
      : [...shell, data];
  } else {
    let full = command;
    for (const heredoc of heredocs) {
      const delimiter = heredoc.getDelimiterRange();
      full += `\n${body(heredoc, lines)}${delimiter ? lines[delimiter.start.line] : heredoc.getName()}`;
    }
    argv = [...shell, full];
  }
  return `${head} ${JSON.stringify(argv)}`;
}

/** The instruction's here-documents, in order (RUN only: COPY and ADD ones are refused earlier). */
export function heredocsOf(instruction: Instruction): HeredocNode[] {
  const withHeredocs = instruction as Instruction & { getHeredocs?: () => HeredocNode[] };
  return withHeredocs.getHeredocs?.() ?? [];
}

/** A document's lines, each ending in a newline, as BuildKit passes them. */
function body(heredoc: HeredocNode, lines: readonly string[]): string {
  const content = heredoc.getContentRange();
  if (!content) return '';
  return `${lines.slice(content.start.line, content.end.line + 1).join('\n')}\n`;
}

/** Command lines with their line continuations (escape + newline) removed, as docker joins them. */
function joinContinuations(commandLines: string[], escape: string): string {
  let out = '';
  for (const line of commandLines) {
    const trimmed = line.replace(/\s+$/, '');
    out += trimmed.endsWith(escape) ? trimmed.slice(0, -escape.length) : line;
  }
  return out;
}

/** A SHELL instruction's command (its JSON array), or undefined when it is not one. */
export function shellOf(instruction: Instruction, lines: readonly string[]): string[] | undefined {
  const range = instruction.getArgumentsRange();
  if (!range) return undefined;
  const text = lines
    .slice(range.start.line, range.end.line + 1)
    .map((line, i) => (i === 0 ? line.slice(range.start.character) : line))
    .join(' ');
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) && parsed.length > 0 && parsed.every((p) => typeof p === 'string')
      ? (parsed as string[])
      : undefined;
  } catch {
    return undefined;
  }
}

/** Where a COPY here-document's file is put in the builder's copy of the context. */
export const HEREDOC_FILES_DIR = '.microvm-heredocs';

/** A file the builder writes into its copy of the context before buildah runs. */
export interface GeneratedFile {
  /** Relative to the context, '/'-separated. */
  rel: string;
  content: string;
}

/** Why a COPY here-document cannot be built as written (the caller names the line). */
export class HeredocProblem extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

/**
 * A COPY with here-documents (`COPY <<EOF /etc/app.conf`, `COPY <<a.txt <<b.txt /dir/`),
 * rewritten for buildah 1.28: each document becomes a file named after its delimiter in
 * HEREDOC_FILES_DIR/<index>/ of the builder's context, and the COPY copies that file, as
 * BuildKit does (mode 0644 unless --chmod). A document with an unquoted delimiter has its
 * variables expanded by BuildKit; the host cannot know their values, so one that holds a `$`
 * is a HeredocProblem (quoting the delimiter keeps the text as written). Returns undefined
 * when the instruction has no here-documents.
 */
export function copyWithoutHeredocs(
  instruction: Instruction,
  lines: readonly string[],
  index: number,
): { text: string; files: GeneratedFile[] } | undefined {
  const heredocs = heredocsOf(instruction);
  const argsRange = instruction.getArgumentsRange();
  if (heredocs.length === 0 || !argsRange) return undefined;
  const head = lines[argsRange.start.line]!.slice(0, argsRange.start.character).trimEnd();
  const files: GeneratedFile[] = [];
  const words: string[] = [];
  let next = 0;
  // The command line ends where the first document starts (the parser also lists the words of
  // the documents as arguments).
  const bodyStart = Math.min(
    ...heredocs.map((h) => (h.getContentRange() ?? h.getDelimiterRange() ?? h.getStartRange()).start.line),
  );
  for (const arg of instruction.getArguments()) {
    const range = arg.getRange();
    if (range.start.line >= bodyStart) continue;
    const raw = lines[range.start.line]!.slice(range.start.character, range.end.character);
    const start = HEREDOC_START.exec(raw);
    const heredoc = start ? heredocs[next] : undefined;
    if (!start || !heredoc) {
      words.push(raw);
      continue;
    }
    next++;
    const [, chomp, quote, name = ''] = start;
    let content = body(heredoc, lines);
    if (chomp) content = content.replace(/^\t+/gm, '');
    if (!quote && content.includes('$'))
      throw new HeredocProblem(
        `the here-document <<${name} holds a $, which BuildKit expands from the build's ARG and ENV values and the builder cannot`,
        `quote its delimiter (<<'${name}') to copy the text as written, or write the file with RUN`,
      );
    const rel = `${HEREDOC_FILES_DIR}/${index}/${name}`;
    files.push({ rel, content });
    words.push(rel);
  }
  return { text: `${head} ${words.join(' ')}`, files };
}
