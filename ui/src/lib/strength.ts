// A small, local passphrase strength estimate: length, character classes, and penalties for
// patterns people (and cracking tools) reach for first. No network, no large word lists.

export type Strength = { score: 0 | 1 | 2 | 3 | 4; bits: number; hints: StrengthHint[] };
export type StrengthHint =
  'too-short' | 'common' | 'sequence' | 'repeat' | 'date' | 'one-class' | 'add-words';

const COMMON = [
  'password',
  'passw0rd',
  'letmein',
  'welcome',
  'qwerty',
  'azerty',
  'iloveyou',
  'admin',
  'monkey',
  'dragon',
  'football',
  'baseball',
  'sunshine',
  'princess',
  'shadow',
  'master',
  'secret',
  'trustno1',
  'superman',
  'batman',
  'starwars',
  'hello',
  'freedom',
  'whatever',
  'computer',
  'internet',
  'login',
  'abc123',
  'changeme',
  'sotto',
  'love',
  'god',
  'money',
  'summer',
  'winter',
  'spring',
  'autumn',
  'flower',
  'family',
  'mother',
  'father',
  'baby',
  'jesus',
  'michael',
  'jennifer',
  'india',
  'america',
  'cricket',
  'pakistan',
];

const HINT_ORDER: StrengthHint[] = [
  'common',
  'sequence',
  'date',
  'repeat',
  'too-short',
  'one-class',
  'add-words',
];

const ROWS = ['qwertyuiop', 'asdfghjkl', 'zxcvbnm', '1234567890', 'abcdefghijklmnopqrstuvwxyz'];

function leet(s: string): string {
  return s
    .replace(/[@4]/g, 'a')
    .replace(/3/g, 'e')
    .replace(/[1!|]/g, 'i')
    .replace(/0/g, 'o')
    .replace(/[$5]/g, 's')
    .replace(/7/g, 't');
}

/** Length of characters that belong to straight runs (abcd, 4321, qwer) of 3 or more. */
function sequenceChars(s: string): number {
  let total = 0;
  for (const row of ROWS) {
    const rev = [...row].reverse().join('');
    for (const r of [row, rev]) {
      for (let len = r.length; len >= 3; len--) {
        for (let i = 0; i + len <= r.length; i++) {
          const part = r.slice(i, i + len);
          if (s.includes(part)) {
            total += len;
            s = s.split(part).join(' ');
          }
        }
      }
    }
  }
  return total;
}

export function estimateStrength(pass: string): Strength {
  const hints: StrengthHint[] = [];
  if (!pass) return { score: 0, bits: 0, hints: ['too-short'] };
  const chars = [...pass];
  let pool = 0;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9\s]/, /\s/];
  const sizes = [26, 26, 10, 33, 1];
  let classCount = 0;
  classes.forEach((re, i) => {
    if (re.test(pass)) {
      pool += sizes[i] ?? 0;
      classCount++;
    }
  });
  if (/[^\u0020-\u007e]/.test(pass)) pool += 100;
  let effective = chars.length;
  const lower = pass.toLowerCase();
  const plain = leet(lower);

  // Repeated characters and repeated chunks add little.
  const repeats = lower.match(/(.)\1{2,}/g);
  if (repeats) {
    hints.push('repeat');
    for (const r of repeats) effective -= r.length - 1;
  }
  const chunk = /^(.{1,6}?)\1+$/.exec(lower);
  if (chunk?.[1]) {
    if (!hints.includes('repeat')) hints.push('repeat');
    effective = Math.min(effective, chunk[1].length + 1);
  }
  const seq = sequenceChars(lower);
  if (seq > 0) {
    hints.push('sequence');
    effective -= seq * 0.75;
  }
  let commonLen = 0;
  for (const w of COMMON) {
    if (plain.includes(w) || lower.includes(w)) commonLen += w.length;
  }
  if (commonLen > 0) {
    hints.push('common');
    effective -= commonLen * 0.8;
  }
  const dates = lower.match(/(19|20)\d\d/g);
  if (dates) {
    hints.push('date');
    effective -= dates.length * 2.5;
  }
  effective = Math.max(effective, Math.min(chars.length, 1));
  let bits = effective * Math.log2(Math.max(pool, 10));
  // Several words separated by spaces or dashes: reward a diceware-style passphrase.
  const words = pass.split(/[\s\-_.]+/).filter((w) => w.length >= 3);
  if (words.length >= 4) bits = Math.max(bits, words.length * 11);
  if (chars.length < 8) hints.push('too-short');
  if (classCount === 1 && chars.length < 16) hints.push('one-class');
  if (bits < 60 && words.length < 4) hints.push('add-words');
  let score: Strength['score'];
  if (chars.length < 8 || bits < 28) score = 0;
  else if (bits < 40) score = 1;
  else if (bits < 55) score = 2;
  else if (bits < 75) score = 3;
  else score = 4;
  if (hints.includes('common') && score > 1 && bits < 60) score = 1;
  hints.sort((a, b) => HINT_ORDER.indexOf(a) - HINT_ORDER.indexOf(b));
  return { score, bits: Math.round(bits), hints };
}

/** A passphrase good enough to protect the profile or a backup. */
export const MIN_SCORE = 2;
export const MIN_LENGTH = 8;
export function acceptable(pass: string): boolean {
  return [...pass].length >= MIN_LENGTH && estimateStrength(pass).score >= MIN_SCORE;
}
