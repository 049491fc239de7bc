const PYTHON_MARKERS = ['pyproject.toml', 'requirements.txt', 'setup.py', 'setup.cfg', 'Pipfile', 'poetry.lock', 'uv.lock'];

/** Whether the folder holds a Python project (by the files at its root): its `.venv` then lives on a volume. */
export function isPythonProject(entries: string[]): boolean {
  return entries.some((name) => PYTHON_MARKERS.includes(name));
}
