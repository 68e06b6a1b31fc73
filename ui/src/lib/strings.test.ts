import { describe, expect, it } from 'vitest';
import { strings } from './strings';

describe('strings', () => {
  it('formats the version label', () => {
    expect(strings.versionLabel('1.2.3')).toBe('Version 1.2.3');
  });
});
