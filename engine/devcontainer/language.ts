import * as fs from 'node:fs';

/**
 * What a folder without a devcontainer.json is written in, told by the files build tools
 * look for at its top level, so that it opens on an image with that language's toolchain.
 */
export type Language = 'node' | 'python' | 'go' | 'rust' | 'ruby' | 'java' | 'dotnet';

/** Every language a folder may be detected as, in the order settings list them. */
export const LANGUAGES: readonly Language[] = ['node', 'python', 'go', 'rust', 'ruby', 'java', 'dotnet'];

/**
 * The official language images (Docker Hub's, and Microsoft's for .NET), on Debian where the
 * image has a Debian flavour. The `microvm.defaultImages` setting overrides any of them; '' turns
 * one off (the folder then opens on the embedded default image).
 */
export const DEFAULT_LANGUAGE_IMAGES: Readonly<Record<Language, string>> = {
  node: 'node:22-bookworm',
  python: 'python:3.12-bookworm',
  go: 'golang:1.23-bookworm',
  rust: 'rust:1-bookworm',
  ruby: 'ruby:3.3-bookworm',
  java: 'eclipse-temurin:21-jdk',
  dotnet: 'mcr.microsoft.com/dotnet/sdk:8.0',
};

/** Each language's name as people write it, for messages. */
export const LANGUAGE_NAMES: Readonly<Record<Language, string>> = {
  node: 'Node.js',
  python: 'Python',
  go: 'Go',
  rust: 'Rust',
  ruby: 'Ruby',
  java: 'Java',
  dotnet: '.NET',
};

/** Marker files per language, exact names or a suffix (`*.csproj`). */
const MARKERS: ReadonlyArray<{ language: Language; names: readonly string[]; suffixes?: readonly string[] }> = [
  { language: 'go', names: ['go.mod'] },
  { language: 'rust', names: ['Cargo.toml'] },
  {
    language: 'java',
    names: ['pom.xml', 'build.gradle', 'build.gradle.kts', 'settings.gradle', 'settings.gradle.kts'],
  },
  { language: 'dotnet', names: ['global.json'], suffixes: ['.csproj', '.fsproj', '.sln'] },
  { language: 'ruby', names: ['Gemfile'] },
  {
    language: 'python',
    names: ['pyproject.toml', 'requirements.txt', 'setup.py', 'setup.cfg', 'Pipfile', 'poetry.lock', 'uv.lock'],
  },
  { language: 'node', names: ['package.json'] },
];

/** A language found in a folder, and the file that told it. */
export interface DetectedLanguage {
  language: Language;
  /** The file that told it. */
  marker: string;
}

/**
 * Every language the folder's top level shows, most specific first: a Go, Rust, Java, .NET,
 * Ruby or Python project often carries a package.json for its front-end tooling, while the
 * reverse is rare, so Node.js comes last. Reads one directory listing, nothing else.
 */
export function detectLanguages(folder: string): DetectedLanguage[] {
  let names: string[];
  try {
    names = fs.readdirSync(folder).sort();
  } catch {
    return [];
  }
  const found: DetectedLanguage[] = [];
  for (const { language, names: exact, suffixes = [] } of MARKERS) {
    const marker =
      exact.find((n) => names.includes(n)) ??
      names.find((n) => suffixes.some((s) => n.endsWith(s) && n.length > s.length));
    if (marker) found.push({ language, marker });
  }
  return found;
}

/** The image for a language: the user's setting when it names one for it, else the default. */
export function languageImage(language: Language, overrides: Partial<Record<string, string>> | undefined): string {
  const own = overrides?.[language];
  return own !== undefined ? own.trim() : DEFAULT_LANGUAGE_IMAGES[language];
}
