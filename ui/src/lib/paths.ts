// A sensible default place for a backup: the user's home folder, guessed from the profile path.

export function homeFrom(profileDir: string): string | null {
  const m =
    /^(\/home\/[^/]+|\/Users\/[^/]+|\/root|[A-Za-z]:\\Users\\[^\\]+)/.exec(profileDir) ?? null;
  return m?.[1] ?? null;
}

// The time is in the name so a second backup on the same day gets a name of its own (an
// existing file is never replaced).
export function defaultBackupPath(profileDir: string, now: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const d = `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  const name = `sotto-backup-${d}-${two(now.getHours())}${two(now.getMinutes())}.sotto`;
  const home = homeFrom(profileDir);
  if (home) return home.includes('\\') ? `${home}\\${name}` : `${home}/${name}`;
  const dir = profileDir.replace(/[/\\]+$/, '');
  return dir ? `${dir}/../${name}` : name;
}
