// A sensible default place for a backup: the user's home folder, guessed from the profile path.

export function homeFrom(profileDir: string): string | null {
  const m =
    /^(\/home\/[^/]+|\/Users\/[^/]+|\/root|[A-Za-z]:\\Users\\[^\\]+)/.exec(profileDir) ?? null;
  return m?.[1] ?? null;
}

export function defaultBackupPath(profileDir: string, now: Date): string {
  const d = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(
    now.getDate(),
  ).padStart(2, '0')}`;
  const name = `sotto-backup-${d}.sotto`;
  const home = homeFrom(profileDir);
  if (home) return home.includes('\\') ? `${home}\\${name}` : `${home}/${name}`;
  const dir = profileDir.replace(/[/\\]+$/, '');
  return dir ? `${dir}/../${name}` : name;
}
