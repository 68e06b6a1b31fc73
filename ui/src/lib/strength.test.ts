import { describe, expect, it } from 'vitest';
import { acceptable, estimateStrength } from './strength';

describe('passphrase strength', () => {
  it('rates empty and short passphrases as very weak', () => {
    expect(estimateStrength('').score).toBe(0);
    expect(estimateStrength('aB3$x').score).toBe(0);
    expect(estimateStrength('aB3$x').hints).toContain('too-short');
  });

  it('sees through common passwords, leetspeak, runs and years', () => {
    expect(estimateStrength('password').score).toBeLessThanOrEqual(1);
    expect(estimateStrength('P@ssw0rd1').hints).toContain('common');
    expect(estimateStrength('qwertyuiop').hints).toContain('sequence');
    expect(estimateStrength('aaaaaaaaaaaa').hints).toContain('repeat');
    expect(estimateStrength('abcabcabcabc').score).toBe(0);
    expect(estimateStrength('michael1987').hints).toContain('date');
    expect(acceptable('password1234')).toBe(false);
  });

  it('rewards length and several unrelated words', () => {
    const words = estimateStrength('correct horse battery staple');
    expect(words.score).toBeGreaterThanOrEqual(3);
    expect(estimateStrength('tR7#kq9!Lm2v').score).toBeGreaterThanOrEqual(3);
    expect(acceptable('violet tractor whisper canyon')).toBe(true);
  });

  it('is monotone enough: adding random words never lowers the score', () => {
    let prev = 0;
    let p = 'lantern';
    for (const w of ['orbit', 'mossy', 'quiver', 'tundra']) {
      p += ` ${w}`;
      const s = estimateStrength(p).score;
      expect(s).toBeGreaterThanOrEqual(prev);
      prev = s;
    }
  });
});
